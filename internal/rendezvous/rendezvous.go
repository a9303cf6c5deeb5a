// Package rendezvous holds the hashing that subset and fleet share:
// rendezvous (highest random weight) hashing with XXH64, as gRFC A68
// suggests, over a canonical string of each address.
//
// Scores must be equal in every process and every version of vigil that
// shares a fleet or expects the same subsets: the hash, the seed derivation
// and the address string below are part of the format and never change.
package rendezvous

import (
	"net/netip"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/vigil-go/vigil/resolver"
)

// Seed returns the seed that s (a client id, an address string) stands for.
func Seed(s string) uint64 { return xxhash.Sum64String(s) }

// Score returns item's score under seed: XXH64 of item with seed as the
// hash's seed. Sorting items by score gives a random order that depends on
// seed alone, and an item's score does not depend on the other items, so
// adding or removing one item moves no other item in that order.
func Score(seed uint64, item string) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	_, _ = d.WriteString(item)
	return d.Sum64()
}

// AddressString returns k's canonical string: "ip:port/hostname" (an IPv6
// address in brackets, with its zone). It identifies a target as
// resolver.Key does.
func AddressString(k resolver.Key) string {
	var buf [80]byte
	return string(appendAddress(buf[:0], k))
}

// ScoreAddress returns Score(seed, AddressString(k)) without building the
// string.
func ScoreAddress(seed uint64, k resolver.Key) uint64 {
	var buf [80]byte
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	_, _ = d.Write(appendAddress(buf[:0], k))
	return d.Sum64()
}

func appendAddress(b []byte, k resolver.Key) []byte {
	if k.IP.IsValid() {
		b = netip.AddrPortFrom(k.IP, k.Port).AppendTo(b)
	} else {
		b = strconv.AppendUint(append(b, "invalid:"...), uint64(k.Port), 10)
	}
	b = append(b, '/')
	return append(b, k.Hostname...)
}
