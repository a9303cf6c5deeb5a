package health

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/resolver"
)

// ErrRunning is returned by Run when the checker is already running.
var ErrRunning = errors.New("health: checker already running")

// Checker checks the health of one upstream's targets. Create it with
// NewChecker; its methods are safe for concurrent use.
type Checker struct {
	name      string
	bus       *events.Bus
	topic     events.Topic[StatusChange]
	log       *slog.Logger
	maxProbes int // WithMaxProbes
	maxIdle   int // WithMaxIdleConns
	http      *httpProber
	jitter    func() float64                              // in [0, 1): how much shorter an ejection is, in tenths
	filter    func([]resolver.Address) []resolver.Address // WithTargetFilter; nil: every address
	shared    bool                                        // mem is a WithMemory one: Run leaves live targets in it

	wake  chan struct{} // buffered 1: tells the scheduler that the heap's head changed
	pubMu sync.Mutex    // serializes flush, so events leave in the order they happened

	mu          sync.Mutex // guards everything below; never held across I/O
	cfg         Config     // normalized
	rules       rules
	targets     map[resolver.Key]*target
	departed    map[resolver.Key]*target // removed targets whose probe is still in flight
	queue       targetHeap               // queued targets by next-probe time
	ejections   targetHeap               // live targets whose passive verdict is an ejection, by its end
	outlierAt   time.Time                // the next outlier evaluation, while Run runs and outlier detection is on
	mem         *Memory                  // nil: remember nothing
	stamp       uint64
	last        []resolver.Address // the last target set, when lastSorted
	lastSorted  bool               // last is the target set in canonical order
	scratchGone []int32            // merge's work lists, kept to avoid allocating
	scratchNew  []int32
	samples     []sample                    // detectOutliers' work list, kept to avoid allocating
	probeFilter func(resolver.Address) bool // SetProbeFilter; nil: probe every target
	idleConns   int                         // connections kept between probes
	running     bool
	gen         atomic.Uint64 // written with mu held; read without it by Generation
	changed     chan struct{}
	healthy     []resolver.Address
	healthyGen  uint64
	outbox      []StatusChange
	stats       Stats

	onProbeStart func(t *target) // tests only; called with mu held just before a probe's I/O
}

// Stats are a checker's counters.
type Stats struct {
	Version         uint64 // of the last applied Change; 0 before the first
	ChangesApplied  uint64 // Changes from the bus that were applied
	ChangesIgnored  uint64 // Changes not newer than the last applied one, or for another name
	Targets         int    // live targets
	Remembered      int    // departed targets in memory, of this checker's name
	InFlight        int    // probes in flight
	ProbesStarted   uint64
	ProbesCompleted uint64 // probes whose outcome was applied
	ProbesDropped   uint64 // probes whose outcome was dropped: target removed or probe settings changed
	Transitions     uint64 // status changes
	Ejected         int    // live targets whose passive verdict is an ejection
	Ejections       uint64 // passive ejections started, outliers and Retry-After included
	// OutlierEvaluations counts the outlier detection intervals evaluated.
	OutlierEvaluations uint64
	// OutliersDetected counts the outliers found, ejected or not (by
	// EnforcementPercentage or MaxEjectionPercent).
	OutliersDetected uint64
}

// NewChecker validates cfg and returns a checker for the upstream cfg.Name.
// It starts nothing; see Run. bus may be nil: then targets come from
// SetTargets only and no StatusChange is published.
func NewChecker(cfg Config, bus *events.Bus, opts ...Option) (*Checker, error) {
	n, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	mem := o.memory
	if mem == nil {
		mem = newMemory(n.Memory)
	}
	c := &Checker{
		name:       n.Name,
		bus:        bus,
		topic:      StatusTopic(n.Name),
		log:        o.log,
		maxProbes:  o.maxProbes,
		maxIdle:    o.maxIdle,
		http:       newHTTPProber(o.tlsConfig),
		jitter:     rand.Float64,
		filter:     o.filter,
		shared:     o.memory != nil,
		wake:       make(chan struct{}, 1),
		cfg:        n,
		rules:      rulesOf(n),
		targets:    make(map[resolver.Key]*target),
		queue:      newProbeQueue(),
		ejections:  newEjectionQueue(),
		departed:   make(map[resolver.Key]*target),
		mem:        mem,
		lastSorted: true, // the empty set: the first reconcile of a Change merges
		changed:    make(chan struct{}),
	}
	return c, nil
}

// Config returns the checker's configuration with defaults filled in.
func (c *Checker) Config() Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Clone()
}

// Status returns a's status, or Unknown when a is not a target. Weight and
// Priority of a are ignored.
func (c *Checker) Status(a resolver.Address) Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.targets[a.Key()]; t != nil {
		return t.state.status()
	}
	return Unknown
}

// Target returns a snapshot of a's state and whether a is a target.
func (c *Checker) Target(a resolver.Address) (Target, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.targets[a.Key()]; t != nil {
		return t.snapshot(), true
	}
	return Target{}, false
}

// Targets returns a snapshot of every target, in resolver.Compare order.
func (c *Checker) Targets() []Target {
	c.mu.Lock()
	out := make([]Target, 0, len(c.targets))
	for _, t := range c.targets {
		out = append(out, t.snapshot())
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Target) int { return resolver.Compare(a.Address, b.Address) })
	return out
}

// Remembered returns the remembered state of a departed address and whether
// there is one. Its Status is what the address will have when it returns.
func (c *Checker) Remembered(a resolver.Address) (Target, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.mem.peek(c.name, a.Key(), time.Now())
	if !ok {
		return Target{}, false
	}
	return r.snapshot(), true
}

// RememberedTargets returns the remembered state of every departed target
// of this checker (see Remembered), in resolver.Compare order: at most the
// memory's size of them.
func (c *Checker) RememberedTargets() []Target {
	c.mu.Lock()
	mem := c.mem
	c.mu.Unlock()
	rs := mem.all(c.name, time.Now())
	out := make([]Target, len(rs))
	for i := range rs {
		out[i] = rs[i].snapshot()
	}
	slices.SortFunc(out, func(a, b Target) int { return resolver.Compare(a.Address, b.Address) })
	return out
}

// Healthy returns the healthy targets' addresses in resolver.Compare order.
// The slice is shared by every caller until the next change and must not be
// modified; calling Healthy again without a change in between costs one
// lock and no allocation.
func (c *Checker) Healthy() []resolver.Address {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.healthy != nil && c.healthyGen == c.gen.Load() {
		return c.healthy
	}
	h := make([]resolver.Address, 0, len(c.targets))
	if c.lastSorted && len(c.last) == len(c.targets) {
		// c.last is the target set in canonical order: no sort needed.
		for _, a := range c.last {
			if t := c.targets[a.Key()]; t != nil && t.state.status() == Healthy {
				h = append(h, t.addr)
			}
		}
	} else {
		for _, t := range c.targets {
			if t.state.status() == Healthy {
				h = append(h, t.addr)
			}
		}
		resolver.Sort(h)
	}
	c.healthy, c.healthyGen = h, c.gen.Load()
	return h
}

// Generation returns a number that grows whenever a target is added or
// removed, changes status, or changes Weight or Priority. It is one atomic
// load and takes no lock, so a load balancer can call it on every pick.
func (c *Checker) Generation() uint64 {
	return c.gen.Load()
}

// Changed returns a channel that is closed at the next change that advances
// Generation. Typical use: read Healthy, then wait on the channel obtained
// before reading it.
func (c *Checker) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Stats returns the checker's counters.
func (c *Checker) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Targets = len(c.targets)
	s.Remembered = c.mem.count(c.name, time.Now())
	s.Ejected = c.ejections.Len()
	return s
}

// bump records a change visible to Healthy/Generation; c.mu is held.
func (c *Checker) bump() {
	c.gen.Add(1)
	close(c.changed)
	c.changed = make(chan struct{})
}

// flush publishes and logs queued events outside c.mu, in order.
func (c *Checker) flush() {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	evs := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	for _, e := range evs {
		c.logChange(e)
		events.Publish(c.bus, c.topic, e)
	}
}

// unlockAndFlush releases c.mu and publishes what the critical section queued.
func (c *Checker) unlockAndFlush() {
	pending := len(c.outbox) > 0
	c.mu.Unlock()
	if pending {
		c.flush()
	}
}

// Run checks the targets until ctx ends, then returns nil after it has
// unsubscribed from the bus and waited for probes in flight. It returns
// ErrRunning if the checker is running. While it runs it costs one
// goroutine (its own) plus one per probe in flight: probe goroutines start
// on demand, at most WithMaxProbes at once. It closes the connections
// targets keep between HTTP(S) probes when it returns. It also ends passive ejections
// at their deadlines and runs outlier detection.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrRunning
	}
	c.running = true
	c.mu.Unlock()
	c.reclaim()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var probes sync.WaitGroup // one goroutine per probe in flight

	unsubscribe := events.Subscribe(c.bus, resolver.Topic(c.name), c.applyChange)

	c.schedule(ctx, &probes) // returns when ctx ends

	unsubscribe() // waits for a Change being applied: none is applied after it
	probes.Wait()
	c.closeConns()
	c.leave()

	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	return nil
}

// reclaim takes out of a shared memory what a previous Run of this checker
// left there of the targets it still holds: their state here is newer,
// and a stale copy would come back in place of a later departure's.
func (c *Checker) reclaim() {
	if !c.shared {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mem.lock()
	defer c.mem.unlock()
	for k := range c.targets {
		c.mem.takeLocked(c.name, k, now)
	}
}

// leave puts the state of every live target in a shared memory, for the
// next checker of this name (R9); the targets stay live here.
func (c *Checker) leave() {
	if !c.shared {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := make([]remembered, 0, len(c.targets))
	if c.lastSorted && len(c.last) == len(c.targets) {
		for _, a := range c.last { // the target set in key order already
			rs = append(rs, remembered{addr: c.targets[a.Key()].addr, state: c.targets[a.Key()].state})
		}
	} else {
		for _, t := range c.targets {
			rs = append(rs, remembered{addr: t.addr, state: t.state})
		}
		slices.SortFunc(rs, func(a, b remembered) int { return a.addr.Key().Compare(b.addr.Key()) })
	}
	c.mem.park(c.name, rs, time.Now())
}

// closeConns closes the connections targets keep between probes.
func (c *Checker) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.targets {
		c.dropConn(t)
	}
}
