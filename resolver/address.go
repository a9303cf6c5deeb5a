package resolver

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// Address is one resolved endpoint of a name.
//
// Two Addresses are the same target when their Keys are equal: IP, Port and
// Hostname (Weight and Priority are attributes of the target, not part of
// its identity).
type Address struct {
	IP       netip.Addr
	Port     uint16
	Hostname string // the name it was resolved for: the SRV target, else the queried name
	Weight   uint16 // SRV weight; 0 for A/AAAA
	Priority uint16 // SRV priority
}

// Key is a target's identity: its IP (with its zone, if any), port and
// hostname. It is comparable, so it serves as a map key in every package.
type Key struct {
	IP       netip.Addr
	Port     uint16
	Hostname string
}

// Key returns a's identity.
func (a Address) Key() Key { return Key{IP: a.IP, Port: a.Port, Hostname: a.Hostname} }

// Compare orders keys by IP, then port, then hostname. It returns -1, 0 or
// +1; 0 means the same target.
func (k Key) Compare(o Key) int {
	if c := k.IP.Compare(o.IP); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(k.Port, o.Port), cmp.Compare(k.Hostname, o.Hostname))
}

// HostPort returns the address in "ip:port" form, suitable for net.Dial; an
// IPv6 address keeps its zone ("[fe80::1%eth0]:80").
func (a Address) HostPort() string {
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(int(a.Port)))
}

// String returns "hostname/ip:port", or "ip:port" when Hostname is empty.
func (a Address) String() string {
	if a.Hostname == "" {
		return a.HostPort()
	}
	return a.Hostname + "/" + a.HostPort()
}

// Compare orders addresses canonically: by identity (see Key.Compare), then
// priority and weight. It returns -1, 0 or +1. A list in this order without
// two addresses of one Key is strictly increasing by Key.
func Compare(a, b Address) int {
	if c := a.Key().Compare(b.Key()); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Weight, b.Weight))
}

// Sort sorts addrs in place in canonical order (see Compare), so that equal
// sets compare equal element by element.
func Sort(addrs []Address) {
	slices.SortFunc(addrs, Compare)
}
