package balancer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// ErrNoHealthy is matched (errors.Is) by the error of a pick that found no
// target to pick; the error names the upstream.
var ErrNoHealthy = errors.New("balancer: no healthy target")

// Balancer picks healthy addresses of one upstream from a health.Checker.
// Create it with New; its methods are safe for concurrent use.
type Balancer struct {
	c             *health.Checker
	policy        Policy
	panicPPM      int64
	overprovision int // percent; 0: a strict order of priority levels
	slowStart     time.Duration
	decay         time.Duration // PeakEWMA's time constant
	tau           float64       // decay in nanoseconds
	clock         Clock
	realClock     bool      // clock is the real one: now reads the monotonic clock alone
	origin        time.Time // clock reading at New; PeakEWMA's times count from it
	noHealthy     error
	results       *resultPublisher // WithBus; nil publishes nothing
	reports       reporter         // where Calls report outcomes: c, except in tests

	snap atomic.Pointer[snapshot]

	mu     sync.Mutex // one rebuilder at a time; guards the fields below
	built  bool
	since  map[resolver.Key]time.Time // slow start: when each healthy target arrived
	loads  map[resolver.Key]*load     // LeastRequest, PeakEWMA: per-target counters
	epoch  uint64
	seqs   map[uint16]*counter // RoundRobin: one rotation counter per priority level
	across *counter            // RoundRobin: walks the schedule of levels
}

// reporter receives the outcomes of Calls: the checker's passive checks.
type reporter interface {
	ReportSuccess(a resolver.Address)
	ReportHTTPStatus(a resolver.Address, code int)
	ReportTCPFailure(a resolver.Address)
	ReportTimeout(a resolver.Address)
	ReportRetryAfter(a resolver.Address, code int, d time.Duration)
	ReportFailure(resolver.Address, string)
}

// New returns a balancer over the targets of c. It starts nothing: the first
// pick builds the first snapshot.
func New(c *health.Checker, opts ...Option) *Balancer {
	b := &Balancer{c: c, reports: c, clock: realClock{}, decay: defaultDecay, across: new(counter)}
	for _, o := range opts {
		o(b)
	}
	if b.panicPPM > 0 && b.overprovision == 0 {
		b.overprovision = defaultOverprovision
	}
	b.tau = float64(b.decay)
	_, b.realClock = b.clock.(realClock)
	b.origin = b.clock.Now()
	name := c.Config().Name
	b.noHealthy = fmt.Errorf("%w for upstream %q", ErrNoHealthy, name)
	if b.results != nil {
		b.results.name, b.results.topic = name, ResultTopic(name)
	}
	return b
}

// Policy returns the balancer's policy.
func (b *Balancer) Policy() Policy { return b.policy }

// Pick returns a healthy address of the upstream, or an error matching
// ErrNoHealthy when there is none. It takes no lock and allocates nothing,
// except when it is the pick that rebuilds the snapshot.
func (b *Balancer) Pick() (resolver.Address, error) {
	s := b.snap.Load()
	if s == nil || s.gen != b.c.Generation() || s.refreshAt != 0 {
		s = b.current()
	}
	if len(s.levels) == 0 {
		return resolver.Address{}, b.noHealthy
	}
	lv := s.level()
	return lv.addrs[lv.index(b)], nil
}

// PickKey returns the address that key maps to under ConsistentHash: the same
// address for the same key as long as that address stays a candidate. With
// another policy it picks as Pick does.
func (b *Balancer) PickKey(key string) (resolver.Address, error) {
	s := b.current()
	if len(s.levels) == 0 {
		return resolver.Address{}, b.noHealthy
	}
	lv, i := s.keyIndex(b, key)
	return lv.addrs[i], nil
}

// Candidate reports whether a pick may return a now: a of a level that
// takes picks, healthy or, in a level in panic, any target. Weight and
// Priority of a are ignored.
func (b *Balancer) Candidate(a resolver.Address) bool {
	k, found := a.Key(), false
	b.current().candidates(func(x resolver.Address) { found = found || x.Key() == k })
	return found
}

// current returns a snapshot that matches the checker's generation,
// building one if needed. When the generation moved, a pick waits for a
// build in progress: the previous snapshot may hold a target that has just
// turned unhealthy, and no request may go to it. Only a slow-start ramp's
// timed refresh lets picks use the previous snapshot while another
// goroutine builds.
func (b *Balancer) current() *snapshot {
	s := b.snap.Load()
	if s != nil && s.gen == b.c.Generation() {
		if s.refreshAt == 0 || b.clock.Now().UnixNano() < s.refreshAt {
			return s
		}
		return b.refresh(s) // the ramp moved on: the previous shares will do meanwhile
	}
	return b.refresh(nil)
}

// refresh rebuilds the snapshot unless another goroutine is doing it and
// old (of the current generation, with candidates) may be used meanwhile;
// with old nil it waits for the lock.
func (b *Balancer) refresh(old *snapshot) *snapshot {
	if old != nil && len(old.levels) > 0 {
		if !b.mu.TryLock() {
			return old
		}
	} else {
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	gen := b.c.Generation()
	now := b.clock.Now()
	if s := b.snap.Load(); s != nil && s.gen == gen && (s.refreshAt == 0 || now.UnixNano() < s.refreshAt) {
		return s // built by another goroutine meanwhile
	}
	s := b.build(gen, now)
	b.snap.Store(s)
	return s
}

// now returns the clock's time as nanoseconds since the balancer was made
// (monotonic with the real clock).
func (b *Balancer) now() int64 {
	if b.realClock {
		return int64(time.Since(b.origin))
	}
	return int64(b.clock.Now().Sub(b.origin))
}
