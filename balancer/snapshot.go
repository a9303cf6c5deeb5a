package balancer

import (
	"slices"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// snapshot is an immutable view of the candidates at one checker generation.
// Everything in it is read-only once published, except the counters its
// pickers point to.
type snapshot struct {
	gen       uint64
	refreshAt int64 // clock time (Unix ns) at which slow start is due again; 0: never; < 0: never rebuilt (a balancer that failed to configure)
	err       error // why picks fail: set exactly when levels is empty

	healthy []resolver.Address // every healthy target, any priority, canonical order (shared with the checker)
	levels  []level            // the levels that take picks, best priority first; empty: no candidate
	sched   []int32            // indices into levels over one cycle of 100 picks' shares; nil: equal shares
	across  picker             // chooses a level by share; nil with a single level
	keyed   bool               // PickKey hashes the key onto the level's picker
}

// level is one priority level's part of a snapshot.
type level struct {
	priority  uint16
	share     int  // percent of the picks
	panicking bool // addrs holds every target of the level, healthy or not

	addrs  []resolver.Address // the candidates, canonical order: what picks return
	loads  []*load            // parallel to addrs
	base   picker             // the policy's picker: what the next build derives from
	picker picker             // base, or base wrapped by slow start
}

// level returns the level that takes this pick; s has candidates.
func (s *snapshot) level(sh *shards) *level {
	if s.across == nil {
		return &s.levels[0]
	}
	return &s.levels[s.across.pick(sh)]
}

// keyIndex maps key onto the ring of a level chosen by the key under
// ConsistentHash, or picks as Pick does under another policy.
func (s *snapshot) keyIndex(sh *shards, key string) (*level, int) {
	if !s.keyed {
		lv := s.level(sh)
		return lv, lv.picker.pick(sh)
	}
	h := hashString(key)
	lv := &s.levels[0]
	if len(s.levels) > 1 {
		// The level comes from a second hash of the key, so that a key stays
		// in its level as long as the levels' shares do not change.
		lv = &s.levels[slot(s.sched, mix64(h^0x5bd1e9955bd1e995), len(s.levels))]
	}
	return lv, lv.base.(keyPicker).pickKey(h)
}

// candidate reports whether a pick from s may return a target of key k.
// Every level's addrs are in canonical order, which orders keys first.
func (s *snapshot) candidate(k resolver.Key) bool {
	for i := range s.levels {
		if _, ok := slices.BinarySearchFunc(s.levels[i].addrs, k, func(a resolver.Address, k resolver.Key) int {
			return a.Key().Compare(k)
		}); ok {
			return true
		}
	}
	return false
}

// build makes the snapshot of generation gen from the checker's targets,
// deriving each level's picker from the one it had in old (which may be
// nil); b.mu is held.
func (b *Balancer) build(gen uint64, now time.Time, old *snapshot) *snapshot {
	s := &snapshot{gen: gen, keyed: b.pol.keyed}
	var ts []health.Target
	var plans []plan
	if overprovision := b.cfg.overprovision(); overprovision > 0 {
		ts = b.c.Targets()
		s.healthy, plans = envoyPlan(ts, overprovision, b.cfg.panicPPM())
	} else {
		s.healthy = b.c.Healthy()
		plans = strictPlan(s.healthy)
	}
	first := !b.built
	b.built = true
	b.epoch++
	s.levels = make([]level, len(plans))
	shares := make([]uint64, len(plans))
	for i, p := range plans {
		lv := &s.levels[i]
		*lv = level{priority: p.priority, share: p.share, panicking: p.panicking, addrs: p.addrs, loads: b.loadsOf(p.addrs)}
		var prev picker
		if o := old.levelOf(p.priority); o != nil {
			prev = o.base
		}
		lv.base = b.pol.level(prev, candidates{addrs: lv.addrs, loads: lv.loads, shards: b.shards.n, tau: b.tau})
		lv.picker = lv.base
		shares[i] = uint64(p.share)
	}
	b.forgetDeparted()
	if len(s.levels) > 1 {
		s.sched = schedule(shares)
		var prev picker
		if old != nil {
			prev = old.across
		}
		s.across = b.pol.across(prev, s.sched, len(s.levels), b.shards.n)
	}
	if b.cfg.SlowStart > 0 {
		b.ramp(s, now, first)
	}
	if len(s.levels) == 0 {
		if ts == nil {
			ts = b.c.Targets()
		}
		s.err = b.noHealthy(ts)
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
