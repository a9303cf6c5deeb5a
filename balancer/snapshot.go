package balancer

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// snapshot is an immutable view of the candidates at one checker generation.
// Everything in it is read-only once published.
type snapshot struct {
	gen       uint64
	refreshAt int64 // clock time (Unix ns) at which slow start is due again; 0: never
	policy    Policy
	panicking bool
	uniform   bool // picks are uniform at random: RoundRobin without slow start

	healthy []resolver.Address // every healthy target, any priority (shared with the checker)
	addrs   []resolver.Address // the candidates: what picks return

	sched  []int32     // WeightedRoundRobin: indices into addrs; nil when weights are equal
	loads  []*load     // LeastRequest: parallel to addrs
	ring   []ringPoint // ConsistentHash
	accept []uint64    // slow start: acceptance threshold of addrs[i] out of 1<<32; nil: none ramps
}

// fullAccept accepts every draw.
const fullAccept = 1 << 32

// maxRedraws bounds how often slow start redraws a ramping target.
const maxRedraws = 16

// randN returns a uniform index in [0, n) from the calling thread's generator.
func randN(n int) int { return int((uint64(rand.Uint32()) * uint64(n)) >> 32) }

// index picks a candidate by the snapshot's policy; addrs is not empty.
func (s *snapshot) index(b *Balancer) int {
	var i int
	switch s.policy {
	case WeightedRoundRobin:
		n := b.seq.Add(1)
		if s.sched != nil {
			i = int(s.sched[n%uint64(len(s.sched))])
		} else {
			i = int(n % uint64(len(s.addrs)))
		}
	case LeastRequest:
		i = s.twoChoices()
	default:
		i = randN(len(s.addrs))
	}
	if s.accept != nil {
		for tries := 0; tries < maxRedraws; tries++ {
			acc := s.accept[i]
			if acc == fullAccept || uint64(rand.Uint32()) < acc {
				break
			}
			i = s.redraw()
		}
	}
	return i
}

// redraw picks again at random with the policy's proportions.
func (s *snapshot) redraw() int {
	switch {
	case s.policy == LeastRequest:
		return s.twoChoices()
	case s.sched != nil:
		return int(s.sched[randN(len(s.sched))])
	}
	return randN(len(s.addrs))
}

// twoChoices draws two distinct candidates and returns the one with fewer
// requests in flight (the first on a tie).
func (s *snapshot) twoChoices() int {
	n := len(s.addrs)
	if n == 1 {
		return 0
	}
	r := rand.Uint64() // one draw for both choices
	i := int((r & 0xffffffff) * uint64(n) >> 32)
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	if s.loads[j].n.Load() < s.loads[i].n.Load() {
		return j
	}
	return i
}

// keyIndex maps key onto the ring, or picks by policy when there is none.
func (s *snapshot) keyIndex(b *Balancer, key string) int {
	if s.ring == nil {
		return s.index(b)
	}
	return s.lookup(hashString(key))
}

// build makes the snapshot of generation gen; b.mu is held.
func (b *Balancer) build(gen uint64, now time.Time) *snapshot {
	s := &snapshot{gen: gen, policy: b.policy}
	if b.panicPPM > 0 {
		s.healthy, s.addrs, s.panicking = selectWithPanic(b.c.Targets(), b.panicPPM)
	} else {
		s.healthy = b.c.Healthy()
		s.addrs = bestPriority(s.healthy)
	}
	first := !b.built
	b.built = true
	if len(s.addrs) > 0 {
		switch b.policy {
		case WeightedRoundRobin:
			s.sched = schedule(s.addrs)
		case LeastRequest:
			s.loads = b.loadsFor(s.addrs)
		case ConsistentHash:
			if old := b.snap.Load(); old != nil && old.ring != nil {
				s.ring = updateRing(old.addrs, old.ring, s.addrs)
			} else {
				s.ring = buildRing(s.addrs)
			}
		}
	}
	if b.slowStart > 0 {
		b.ramp(s, now, first)
	}
	s.uniform = (s.policy == RoundRobin || s.policy == ConsistentHash) && s.accept == nil
	return s
}

// bestPriority returns the members of healthy with the lowest Priority. When
// all share one priority it returns healthy itself.
func bestPriority(healthy []resolver.Address) []resolver.Address {
	if len(healthy) == 0 {
		return nil
	}
	best, mixed := healthy[0].Priority, false
	for _, a := range healthy[1:] {
		if a.Priority != best {
			mixed = true
			best = min(best, a.Priority)
		}
	}
	if !mixed {
		return healthy
	}
	out := make([]resolver.Address, 0, len(healthy))
	for _, a := range healthy {
		if a.Priority == best {
			out = append(out, a)
		}
	}
	return out
}

// selectWithPanic returns the healthy targets and the candidates under a
// panic threshold of threshold/ppm: the healthy members of the best priority
// level whose healthy fraction reaches the threshold or, when none does, every
// target of the best level (panicking).
func selectWithPanic(ts []health.Target, threshold int64) (healthy, addrs []resolver.Address, panicking bool) {
	type level struct{ total, healthy int64 }
	levels := make(map[uint16]*level)
	prios := make([]uint16, 0, 4)
	for _, t := range ts {
		p := t.Address.Priority
		lv := levels[p]
		if lv == nil {
			lv = &level{}
			levels[p] = lv
			prios = append(prios, p)
		}
		lv.total++
		if t.Status == health.Healthy {
			lv.healthy++
			healthy = append(healthy, t.Address)
		}
	}
	slices.Sort(prios)
	for _, p := range prios {
		lv := levels[p]
		if lv.healthy > 0 && lv.healthy*ppm >= threshold*lv.total {
			for _, a := range healthy {
				if a.Priority == p {
					addrs = append(addrs, a)
				}
			}
			return healthy, addrs, false
		}
	}
	if len(prios) == 0 {
		return healthy, nil, false
	}
	for _, t := range ts {
		if t.Address.Priority == prios[0] {
			addrs = append(addrs, t.Address)
		}
	}
	return healthy, addrs, true
}
