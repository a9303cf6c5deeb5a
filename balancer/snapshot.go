package balancer

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// snapshot is an immutable view of the candidates at one checker generation.
// Everything in it is read-only once published, except the counters it
// points to.
type snapshot struct {
	gen       uint64
	refreshAt int64 // clock time (Unix ns) at which slow start is due again; 0: never
	policy    Policy

	healthy []resolver.Address // every healthy target, any priority, canonical order (shared with the checker)
	levels  []level            // the levels that take picks, best priority first; empty: no candidate
	sched   []int32            // indices into levels over one cycle of 100 picks' shares; nil: equal shares
	across  *counter           // RoundRobin: position in sched
}

// level is one priority level's part of a snapshot.
type level struct {
	priority  uint16
	share     int  // percent of the picks
	panicking bool // addrs holds every target of the level, healthy or not
	policy    Policy

	addrs  []resolver.Address // the candidates: what picks return
	seq    *counter           // RoundRobin: position in the rotation
	sched  []int32            // weighted schedule: indices into addrs over one cycle; nil: equal weights or a policy without weights
	loads  []*load            // LeastRequest, PeakEWMA: parallel to addrs
	ring   []ringPoint        // ConsistentHash
	accept []uint64           // slow start: acceptance threshold of addrs[i] out of 1<<32; nil: none ramps
}

// counter is an atomic counter alone on its cache lines, so that counters of
// different levels, and the snapshot pointer, never share one.
type counter struct {
	_ [64]byte
	n atomic.Uint64
	_ [56]byte
}

// fullAccept accepts every draw.
const fullAccept = 1 << 32

// maxRedraws bounds how often slow start redraws a ramping target.
const maxRedraws = 16

// randN returns a uniform index in [0, n) from the calling thread's generator.
func randN(n int) int { return int((uint64(rand.Uint32()) * uint64(n)) >> 32) }

// slot returns the entry of a schedule (or, with none, of a plain rotation
// over size entries) at position n.
func slot(sched []int32, n uint64, size int) int {
	if sched == nil {
		return int(n % uint64(size))
	}
	return int(sched[n%uint64(len(sched))])
}

// randomSlot returns a random entry of a schedule, or a random index below
// size with none.
func randomSlot(sched []int32, size int) int {
	if sched == nil {
		return randN(size)
	}
	return int(sched[randN(len(sched))])
}

// level returns the level that takes this pick; levels is not empty.
func (s *snapshot) level() *level {
	if len(s.levels) == 1 {
		return &s.levels[0]
	}
	if s.policy == RoundRobin {
		return &s.levels[slot(s.sched, s.across.n.Add(1), len(s.levels))]
	}
	return &s.levels[randomSlot(s.sched, len(s.levels))]
}

// index picks a candidate of the level by its policy.
func (lv *level) index(b *Balancer) int {
	var i int
	switch lv.policy {
	case RoundRobin:
		i = slot(lv.sched, lv.seq.n.Add(1), len(lv.addrs))
	case LeastRequest:
		i = lv.twoChoices()
	case PeakEWMA:
		i = lv.cheaperOfTwo(b.tau)
	default:
		i = randomSlot(lv.sched, len(lv.addrs))
	}
	if lv.accept != nil {
		for tries := 0; tries < maxRedraws; tries++ {
			acc := lv.accept[i]
			if acc == fullAccept || uint64(rand.Uint32()) < acc {
				break
			}
			i = lv.redraw(b)
		}
	}
	return i
}

// redraw picks again at random with the policy's proportions.
func (lv *level) redraw(b *Balancer) int {
	switch lv.policy {
	case LeastRequest:
		return lv.twoChoices()
	case PeakEWMA:
		return lv.cheaperOfTwo(b.tau)
	}
	return randomSlot(lv.sched, len(lv.addrs))
}

// twoIndices draws two distinct indices below n (n ≥ 2) with one draw.
func twoIndices(n int) (int, int) {
	r := rand.Uint64()
	i := int((r & 0xffffffff) * uint64(n) >> 32)
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}

// twoChoices draws two distinct candidates and returns the one with fewer
// requests in flight (the first on a tie).
func (lv *level) twoChoices() int {
	if len(lv.addrs) == 1 {
		return 0
	}
	i, j := twoIndices(len(lv.addrs))
	if lv.loads[j].n.Load() < lv.loads[i].n.Load() {
		return j
	}
	return i
}

// keyIndex maps key onto the ring of a level chosen by the key, or picks by
// policy when there is no ring.
func (s *snapshot) keyIndex(b *Balancer, key string) (*level, int) {
	if s.policy != ConsistentHash {
		lv := s.level()
		return lv, lv.index(b)
	}
	h := hashString(key)
	lv := &s.levels[0]
	if len(s.levels) > 1 {
		// The level comes from a second hash of the key, so that a key stays
		// in its level as long as the levels' shares do not change.
		lv = &s.levels[slot(s.sched, mix64(h^0x5bd1e9955bd1e995), len(s.levels))]
	}
	return lv, lv.lookup(h)
}

// candidates calls fn for every candidate of every level.
func (s *snapshot) candidates(fn func(resolver.Address)) {
	for i := range s.levels {
		for _, a := range s.levels[i].addrs {
			fn(a)
		}
	}
}

// build makes the snapshot of generation gen; b.mu is held.
func (b *Balancer) build(gen uint64, now time.Time) *snapshot {
	s := &snapshot{gen: gen, policy: b.policy, across: b.across}
	var plans []plan
	if b.overprovision > 0 {
		s.healthy, plans = envoyPlan(b.c.Targets(), b.overprovision, b.panicPPM)
	} else {
		s.healthy = b.c.Healthy()
		plans = strictPlan(s.healthy)
	}
	first := !b.built
	b.built = true
	old := b.snap.Load()
	s.levels = make([]level, len(plans))
	shares := make([]uint64, len(plans))
	seqs := make(map[uint16]*counter, len(plans))
	for i, p := range plans {
		lv := &s.levels[i]
		*lv = level{priority: p.priority, share: p.share, panicking: p.panicking, policy: b.policy, addrs: p.addrs}
		shares[i] = uint64(p.share)
		switch b.policy {
		case RoundRobin, Random:
			if !equalWeights(lv.addrs) {
				lv.sched = schedule(addrWeights(lv.addrs))
			}
		case ConsistentHash:
			if prev := old.levelOf(p.priority); prev != nil && prev.ring != nil {
				lv.ring = updateRing(prev.addrs, prev.ring, lv.addrs)
			} else {
				lv.ring = buildRing(lv.addrs)
			}
		}
		if b.policy == RoundRobin {
			lv.seq = b.seqs[p.priority]
			if lv.seq == nil {
				lv.seq = new(counter)
			}
			seqs[p.priority] = lv.seq
		}
	}
	b.seqs = seqs
	if b.policy == LeastRequest || b.policy == PeakEWMA {
		b.loadsFor(s.levels)
	}
	if len(s.levels) > 1 {
		s.sched = schedule(shares)
	}
	if b.slowStart > 0 {
		b.ramp(s, now, first)
	}
	return s
}

// levelOf returns the level of priority p, or nil; s may be nil.
func (s *snapshot) levelOf(p uint16) *level {
	if s == nil {
		return nil
	}
	for i := range s.levels {
		if s.levels[i].priority == p {
			return &s.levels[i]
		}
	}
	return nil
}
