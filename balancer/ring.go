package balancer

import (
	"cmp"
	"slices"
	"strings"

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
		pts = appendPoints(pts, a, i)
	}
	sortRing(pts, addrs)
	return pts
}

// updateRing derives the ring of addrs from prev, the ring of prevAddrs: the
// points of targets in both keep their order, the points of departed targets
// are dropped and those of new targets merged in. That is linear in the ring's
// size instead of a sort. Both lists must be in identity order; otherwise it
// builds from scratch. The result equals buildRing(addrs).
func updateRing(prevAddrs []resolver.Address, prev []ringPoint, addrs []resolver.Address) []ringPoint {
	if prev == nil || !identitySorted(prevAddrs) || !identitySorted(addrs) {
		return buildRing(addrs)
	}
	remap := make([]int32, len(prevAddrs))
	var added []int
	i, j := 0, 0
	for i < len(prevAddrs) || j < len(addrs) {
		c := 0
		switch {
		case i == len(prevAddrs):
			c = 1
		case j == len(addrs):
			c = -1
		default:
			c = compareIdentity(prevAddrs[i], addrs[j])
		}
		switch {
		case c < 0:
			remap[i] = -1
			i++
		case c > 0:
			added = append(added, j)
			j++
		default:
			remap[i] = int32(j)
			i++
			j++
		}
	}
	fresh := make([]ringPoint, 0, len(added)*ringPointsPerTarget)
	for _, j := range added {
		fresh = appendPoints(fresh, addrs[j], j)
	}
	sortRing(fresh, addrs)
	out := make([]ringPoint, 0, len(addrs)*ringPointsPerTarget)
	k := 0
	for _, p := range prev {
		if remap[p.idx] < 0 {
			continue
		}
		p.idx = remap[p.idx]
		for k < len(fresh) && comparePoints(fresh[k], p, addrs) < 0 {
			out = append(out, fresh[k])
			k++
		}
		out = append(out, p)
	}
	return append(out, fresh[k:]...)
}

func appendPoints(pts []ringPoint, a resolver.Address, i int) []ringPoint {
	h := identityHash(a)
	for j := range uint64(ringPointsPerTarget) {
		pts = append(pts, ringPoint{hash: mix64(h + (j+1)*0x9e3779b97f4a7c15), idx: int32(i)})
	}
	return pts
}

func sortRing(pts []ringPoint, addrs []resolver.Address) {
	slices.SortFunc(pts, func(x, y ringPoint) int { return comparePoints(x, y, addrs) })
}

// comparePoints orders points by hash, then by their target's identity (never
// by index, which changes as targets come and go).
func comparePoints(x, y ringPoint, addrs []resolver.Address) int {
	switch {
	case x.hash < y.hash:
		return -1
	case x.hash > y.hash:
		return 1
	}
	return compareIdentity(addrs[x.idx], addrs[y.idx])
}

// compareIdentity orders addresses by IP, port and hostname.
func compareIdentity(a, b resolver.Address) int {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return strings.Compare(a.Hostname, b.Hostname)
}

func identitySorted(addrs []resolver.Address) bool {
	for i := 1; i < len(addrs); i++ {
		if compareIdentity(addrs[i-1], addrs[i]) >= 0 {
			return false
		}
	}
	return true
}

// consistentHash maps a key onto a hash ring of its candidates; a pick
// without a key is drawn at random. It ignores SRV weights.
type consistentHash struct {
	addrs []resolver.Address // the candidates, in identity order when the ring may be derived
	ring  []ringPoint
}

// newConsistentHash is ConsistentHash's picker of a level: its ring is
// derived from the ring of prev, the level's previous picker, when there
// is one, else built.
func newConsistentHash(prev picker, c candidates) picker {
	if p, ok := prev.(*consistentHash); ok {
		return &consistentHash{addrs: c.addrs, ring: updateRing(p.addrs, p.ring, c.addrs)}
	}
	return &consistentHash{addrs: c.addrs, ring: buildRing(c.addrs)}
}

func (p *consistentHash) pick(*shards) int { return p.draw() }
func (p *consistentHash) draw() int        { return randN(len(p.addrs)) }

// pickKey returns the index of the address owning the first point at or
// after h, wrapping around.
func (p *consistentHash) pickKey(h uint64) int {
	lo, hi := 0, len(p.ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(p.ring) {
		lo = 0
	}
	return int(p.ring[lo].idx)
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
