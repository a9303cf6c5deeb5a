package balancer

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Balancer picks healthy addresses of one upstream from a health.Checker.
// Create it with NewWithConfig or New; its methods are safe for concurrent
// use.
type Balancer struct {
	c       *health.Checker
	cfg     Config  // validated
	pol     *policy // cfg.Policy's behaviour
	err     error   // the *ConfigError New met; every pick fails with it
	name    string  // the upstream's name, normalized
	tau     float64 // PeakEWMA's time constant in nanoseconds
	shards  *shards
	clock   Clock
	real    bool      // clock is the real one: now reads the monotonic clock alone
	origin  time.Time // clock reading at New; PeakEWMA's times count from it
	log     *slog.Logger
	results *resultPublisher // WithBus; nil publishes nothing
	reports reporter         // where Calls report outcomes: c, except in tests

	snap atomic.Pointer[snapshot]

	mu    sync.Mutex // one rebuilder at a time; guards the fields below
	built bool
	epoch uint64                     // builds so far
	since map[resolver.Key]time.Time // slow start: when each healthy target arrived
	loads map[resolver.Key]*tracked  // every target's load, while the checker has it
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

// NewWithConfig returns a balancer over the targets of c that picks as cfg
// says, with opts applied after cfg (WithPolicy and the other options that
// set a Config field change cfg's). An invalid setting, or a nil c, is a
// *ConfigError naming the field (matching ErrInvalidConfig). It starts
// nothing: the first pick builds the first snapshot.
func NewWithConfig(c *health.Checker, cfg Config, opts ...Option) (*Balancer, error) {
	o := options{cfg: cfg, clock: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	if c == nil {
		return nil, &ConfigError{Field: "Checker", Reason: "nil checker"}
	}
	if err := o.cfg.validate(); err != nil {
		return nil, err
	}
	b := &Balancer{
		c:       c,
		cfg:     o.cfg,
		pol:     &behaviours[o.cfg.Policy],
		name:    c.Config().Name,
		tau:     float64(o.cfg.decay()),
		shards:  newShards(),
		clock:   o.clock,
		log:     o.log,
		reports: c,
		loads:   make(map[resolver.Key]*tracked),
	}
	_, b.real = b.clock.(realClock)
	b.origin = b.clock.Now()
	if o.bus != nil {
		b.results = &resultPublisher{bus: o.bus, name: b.name, topic: ResultTopic(b.name)}
	}
	return b, nil
}

// New returns a balancer over the targets of c configured by opts, as
// NewWithConfig(c, Config{}, opts...) does. It cannot return an error: when
// the options set an invalid value (an unknown policy, a panic threshold
// outside [0, 1], a negative window) or c is nil, the balancer it returns
// fails every pick with that *ConfigError (matching ErrInvalidConfig, not
// ErrNoHealthy) and Err returns it. No setting is silently replaced by
// another. Use NewWithConfig to have the error at once.
func New(c *health.Checker, opts ...Option) *Balancer {
	b, err := NewWithConfig(c, Config{}, opts...)
	if err == nil {
		return b
	}
	b = &Balancer{c: c, err: err, pol: &behaviours[RoundRobin], shards: newShardsOf(1), loads: map[resolver.Key]*tracked{}}
	b.snap.Store(&snapshot{refreshAt: -1, err: err})
	return b
}

// Err returns the *ConfigError that New met, which every pick fails with,
// or nil.
func (b *Balancer) Err() error { return b.err }

// Config returns the balancer's configuration as given (zero values stand
// for their defaults).
func (b *Balancer) Config() Config { return b.cfg }

// Policy returns the balancer's policy.
func (b *Balancer) Policy() Policy { return b.cfg.Policy }

// Pick returns a healthy address of the upstream, or an error matching
// ErrNoHealthy (a *NoHealthyError saying why) when there is none. It takes
// no lock and allocates nothing, except when it is the pick that rebuilds
// the snapshot.
func (b *Balancer) Pick() (resolver.Address, error) {
	s := b.snap.Load()
	if s == nil || s.refreshAt != 0 || s.gen != b.c.Generation() {
		s = b.current()
	}
	if s.err != nil {
		return resolver.Address{}, s.err
	}
	lv := s.level(b.shards)
	return lv.addrs[lv.picker.pick(b.shards)], nil
}

// PickKey returns the address that key maps to under ConsistentHash: the same
// address for the same key as long as that address stays a candidate. With
// another policy it picks as Pick does.
func (b *Balancer) PickKey(key string) (resolver.Address, error) {
	s := b.current()
	if s.err != nil {
		return resolver.Address{}, s.err
	}
	lv, i := s.keyIndex(b.shards, key)
	return lv.addrs[i], nil
}

// Candidate reports whether a pick may return a now: a of a level that
// takes picks, healthy or, in a level in panic, any target. Weight and
// Priority of a are ignored.
func (b *Balancer) Candidate(a resolver.Address) bool {
	return b.current().candidate(a.Key())
}

// current returns a snapshot that matches the checker's generation,
// building one if needed. When the generation moved, a pick waits for a
// build in progress: the previous snapshot may hold a target that has just
// turned unhealthy, and no request may go to it. Only a slow-start ramp's
// timed refresh lets picks use the previous snapshot while another
// goroutine builds.
func (b *Balancer) current() *snapshot {
	if b.err != nil {
		return b.snap.Load()
	}
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
// with old nil it waits for the lock. The goroutine that built logs what
// changed, after it let go of the lock.
func (b *Balancer) refresh(old *snapshot) *snapshot {
	if old != nil && old.err == nil {
		if !b.mu.TryLock() {
			return old
		}
	} else {
		b.mu.Lock()
	}
	gen := b.c.Generation()
	now := b.clock.Now()
	prev := b.snap.Load()
	if prev != nil && prev.gen == gen && (prev.refreshAt == 0 || now.UnixNano() < prev.refreshAt) {
		b.mu.Unlock()
		return prev // built by another goroutine meanwhile
	}
	s := b.build(gen, now, prev)
	b.snap.Store(s)
	b.mu.Unlock()
	if b.log != nil {
		b.logChange(prev, s)
	}
	return s
}

// logChange logs what changed the picks as a whole from prev (nil before
// the first build) to s.
func (b *Balancer) logChange(prev, s *snapshot) {
	switch {
	case s.err != nil && (prev == nil || prev.err == nil):
		b.log.Warn("balancer: no healthy target: picks fail until a target is healthy", "upstream", b.name, "err", s.err)
		return
	case s.err == nil && prev != nil && prev.err != nil:
		b.log.Info("balancer: healthy targets again: picks resume", "upstream", b.name, "healthy", len(s.healthy))
	}
	for i := range s.levels {
		lv := &s.levels[i]
		was := prev.levelOf(lv.priority)
		switch {
		case lv.panicking && (was == nil || !was.panicking):
			b.log.Warn("balancer: priority level in panic: too few of its targets are healthy, so its share of the picks goes to all of them, healthy or not",
				"upstream", b.name, "priority", lv.priority, "targets", len(lv.addrs), "share", fmt.Sprintf("%d%%", lv.share))
		case !lv.panicking && was != nil && was.panicking:
			b.log.Info("balancer: priority level out of panic: its picks go to its healthy targets again",
				"upstream", b.name, "priority", lv.priority, "healthy", len(lv.addrs), "share", fmt.Sprintf("%d%%", lv.share))
		}
	}
}

// now returns the clock's time as nanoseconds since the balancer was made
// (monotonic with the real clock).
func (b *Balancer) now() int64 {
	if b.real {
		return int64(time.Since(b.origin))
	}
	return int64(b.clock.Now().Sub(b.origin))
}
