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
	c         *health.Checker
	policy    Policy
	panicPPM  int64
	slowStart time.Duration
	clock     Clock
	noHealthy error
	results   *resultPublisher // WithBus; nil publishes nothing

	snap atomic.Pointer[snapshot]
	_    [56]byte // keeps seq off snap's cache line
	seq  atomic.Uint64
	_    [56]byte

	mu    sync.Mutex // one rebuilder at a time; guards the fields below
	built bool
	since map[resolver.Key]time.Time // slow start: when each healthy target arrived
	loads map[resolver.Key]*load     // LeastRequest: requests in flight per target
	epoch uint64
}

// New returns a balancer over the targets of c. It starts nothing: the first
// pick builds the first snapshot.
func New(c *health.Checker, opts ...Option) *Balancer {
	b := &Balancer{c: c, clock: realClock{}}
	for _, o := range opts {
		o(b)
	}
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
	n := len(s.addrs)
	if n == 0 {
		return resolver.Address{}, b.noHealthy
	}
	if s.uniform {
		return s.addrs[randN(n)], nil
	}
	return s.addrs[s.index(b)], nil
}

// PickKey returns the address that key maps to under ConsistentHash: the same
// address for the same key as long as that address stays a candidate. With
// another policy it picks as Pick does.
func (b *Balancer) PickKey(key string) (resolver.Address, error) {
	s := b.current()
	if len(s.addrs) == 0 {
		return resolver.Address{}, b.noHealthy
	}
	return s.addrs[s.keyIndex(b, key)], nil
}

// current returns a snapshot that matches the checker's generation, building
// one if needed; while another goroutine builds, it returns the previous one.
func (b *Balancer) current() *snapshot {
	s := b.snap.Load()
	if s != nil && s.gen == b.c.Generation() && (s.refreshAt == 0 || b.clock.Now().UnixNano() < s.refreshAt) {
		return s
	}
	return b.refresh(s)
}

// refresh rebuilds the snapshot unless another goroutine is doing it and an
// older snapshot exists to be used meanwhile.
func (b *Balancer) refresh(old *snapshot) *snapshot {
	if old != nil {
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
