package balancer

import (
	"sync/atomic"

	"github.com/vigil-go/vigil/resolver"
)

// load counts one target's requests in flight. It fills a 128-byte size class
// so that counters of different targets never share a cache line.
type load struct {
	n     atomic.Int64
	epoch uint64 // last build that used it; b.mu is held
	_     [112]byte
}

// loadsFor returns the counters of addrs, keeping each target's counter
// across snapshots and forgetting targets that are no longer candidates (a
// Call still in flight keeps its counter); b.mu is held.
func (b *Balancer) loadsFor(addrs []resolver.Address) []*load {
	b.epoch++
	if b.loads == nil {
		b.loads = make(map[resolver.Key]*load, len(addrs))
	}
	out := make([]*load, len(addrs))
	for i, a := range addrs {
		k := a.Key()
		l := b.loads[k]
		if l == nil {
			l = new(load)
			b.loads[k] = l
		}
		l.epoch = b.epoch
		out[i] = l
	}
	for k, l := range b.loads {
		if l.epoch != b.epoch {
			delete(b.loads, k)
		}
	}
	return out
}
