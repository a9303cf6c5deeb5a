package balancer

import (
	"sync/atomic"

	"github.com/vigil-go/vigil/resolver"
)

// load holds one target's requests in flight and, for PeakEWMA, its latency
// estimate. It fills a 128-byte size class so that counters of different
// targets never share a cache line.
type load struct {
	n     atomic.Int64  // requests in flight
	ewma  atomic.Uint64 // PeakEWMA: float64 bits of the latency estimate in ns; 0 until the first response
	stamp atomic.Int64  // PeakEWMA: balancer time (ns) of the estimate
	epoch uint64        // last build that used it; b.mu is held
	_     [96]byte
}

// loadsFor sets the counters of every level's candidates, keeping each
// target's counter across snapshots and forgetting targets that are no
// longer candidates (a Call still in flight keeps its counter); b.mu is held.
func (b *Balancer) loadsFor(levels []level) {
	b.epoch++
	if b.loads == nil {
		b.loads = make(map[resolver.Key]*load)
	}
	for li := range levels {
		lv := &levels[li]
		lv.loads = make([]*load, len(lv.addrs))
		for i, a := range lv.addrs {
			k := a.Key()
			l := b.loads[k]
			if l == nil {
				l = new(load)
				b.loads[k] = l
			}
			l.epoch = b.epoch
			lv.loads[i] = l
		}
	}
	for k, l := range b.loads {
		if l.epoch != b.epoch {
			delete(b.loads, k)
		}
	}
}
