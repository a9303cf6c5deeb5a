package balancer

import (
	"slices"

	"github.com/vigil-go/vigil/resolver"
)

// ringPointsPerTarget is how many points each target has on the hash ring. It
// does not depend on the number of targets, so that a target leaving or
// joining moves no point of another target.
const ringPointsPerTarget = 100

type ringPoint struct {
	hash uint64
	idx  int32 // into the snapshot's addrs
}

// buildRing places ringPointsPerTarget points per address, at positions that
// depend only on the address's identity (IP, port, hostname).
func buildRing(addrs []resolver.Address) []ringPoint {
	pts := make([]ringPoint, 0, len(addrs)*ringPointsPerTarget)
	for i, a := range addrs {
		h := identityHash(a)
		for j := range uint64(ringPointsPerTarget) {
			pts = append(pts, ringPoint{hash: mix64(h + (j+1)*0x9e3779b97f4a7c15), idx: int32(i)})
		}
	}
	slices.SortFunc(pts, func(x, y ringPoint) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return resolver.Compare(addrs[x.idx], addrs[y.idx]) // by identity, not by index
	})
	return pts
}

// lookup returns the index of the address owning the first point at or after
// h, wrapping around.
func (s *snapshot) lookup(h uint64) int {
	lo, hi := 0, len(s.ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(s.ring) {
		lo = 0
	}
	return int(s.ring[lo].idx)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString hashes a caller's key: FNV-1a, then a 64-bit finalizer so that
// similar keys land far apart.
func hashString(key string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * fnvPrime
	}
	return mix64(h)
}

// identityHash hashes a target's identity: IP, port and hostname.
func identityHash(a resolver.Address) uint64 {
	h := uint64(fnvOffset)
	ip := a.IP.As16()
	for _, c := range ip {
		h = (h ^ uint64(c)) * fnvPrime
	}
	h = (h ^ uint64(a.Port>>8)) * fnvPrime
	h = (h ^ uint64(a.Port&0xff)) * fnvPrime
	for i := 0; i < len(a.Hostname); i++ {
		h = (h ^ uint64(a.Hostname[i])) * fnvPrime
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}
