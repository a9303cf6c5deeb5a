package balancer

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// load counts one target's Calls and holds its PeakEWMA estimate. It fills
// a 128-byte size class so that loads of different targets never share a
// cache line (nor the adjacent line a core may prefetch with it).
type load struct {
	picked atomic.Int64  // Calls picked for the target, less those canceled
	ended  atomic.Int64  // Calls ended (Done and its kin)
	ewma   atomic.Uint64 // PeakEWMA: float64 bits of the latency estimate in ns; 0 until the first response
	stamp  atomic.Int64  // PeakEWMA: balancer time (ns) of the estimate
	_      [96]byte
}

// inFlight returns the Calls picked and not ended. It reads ended first:
// picked can only have grown since (a Cancel takes back a Call still in
// flight), so the difference is never below the true count at that moment.
func (l *load) inFlight() int64 {
	e := l.ended.Load()
	return max(l.picked.Load()-e, 0)
}

// tracked is a target's load with what the balancer knows of the target;
// b.mu guards it.
type tracked struct {
	load  *load
	addr  resolver.Address
	epoch uint64 // the last build that had the target as a candidate
}

// loadsOf returns the loads of addrs, making those of targets seen for the
// first time; b.mu is held.
func (b *Balancer) loadsOf(addrs []resolver.Address) []*load {
	out := make([]*load, len(addrs))
	for i, a := range addrs {
		k := a.Key()
		t := b.loads[k]
		if t == nil {
			t = &tracked{load: new(load)}
			b.loads[k] = t
		}
		t.addr, t.epoch = a, b.epoch
		out[i] = t.load
	}
	return out
}

// forgetDeparted drops the loads of targets the checker no longer has. A
// target that is only no longer a candidate (unhealthy, or in a level that
// takes no picks) keeps its load: its requests in flight and its estimate
// are still true when it comes back, and a slow target must not come back
// looking idle. A Call still in flight to a dropped target ends on the load
// it holds. b.mu is held.
func (b *Balancer) forgetDeparted() {
	for k, t := range b.loads {
		if t.epoch != b.epoch && b.c.Status(t.addr) == health.Unknown {
			delete(b.loads, k)
		}
	}
}

// Load is what the balancer counts of one target (see Balancer.Loads).
type Load struct {
	Address resolver.Address
	// InFlight is how many Calls picked for the target have not ended yet:
	// its requests in flight.
	InFlight int64
	// Picks is how many Calls were picked for the target so far, less those
	// canceled: its share of the requests (Pick and PickKey are not counted,
	// which keeps them free of shared writes).
	Picks int64
	// Latency is PeakEWMA's estimate of the target's response time now (the
	// peak EWMA, decayed since its last response); 0 under other policies
	// and before the target's first response.
	Latency time.Duration
}

// Loads returns, in canonical order (resolver.Compare), the counts of
// every target that has been a candidate and is still a target of the
// checker, as of the last snapshot. The counts are read one by one while
// picks go on, and copied out: the result is the caller's. It takes the
// lock that only a snapshot's rebuild takes, never a pick.
func (b *Balancer) Loads() []Load {
	if b.err != nil {
		return nil
	}
	now := b.now()
	b.mu.Lock()
	out := make([]Load, 0, len(b.loads))
	for _, t := range b.loads {
		l := Load{Address: t.addr, InFlight: t.load.inFlight(), Picks: t.load.picked.Load()}
		if b.pol.timed {
			if e := t.load.estimate(now, b.tau); e > 0 {
				l.Latency = time.Duration(math.Round(e))
			}
		}
		out = append(out, l)
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y Load) int { return resolver.Compare(x.Address, y.Address) })
	return out
}
