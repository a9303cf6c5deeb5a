package vigil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// ErrRunning is matched by the error of Run when the upstream is already
// running.
var ErrRunning = errors.New("vigil: upstream already running")

// ErrStopped is matched by the error of a request, or of WaitReady, that
// waited for an upstream whose Run ended meanwhile (or had ended).
var ErrStopped = errors.New("vigil: upstream stopped")

// ErrNotRunning is matched by the error of a request, or of WaitReady, for
// an upstream whose Run was never called: nothing would ever resolve its
// name. Such a wait gives Run RunStartTimeout to start first, so that a
// request made right after `go u.Run(ctx)` is served.
var ErrNotRunning = errors.New("vigil: upstream not running")

// RunStartTimeout is how long a request, or WaitReady, for an upstream
// whose Run was never called waits for Run to start before it fails with
// ErrNotRunning.
const RunStartTimeout = time.Second

// Upstream is one DNS name with everything that keeps its traffic on healthy
// addresses: a resolver.Source following the name, a health.Checker of its
// addresses and a balancer.Balancer over the checker, on one bus, with one
// logger. New builds it and starts nothing; Run runs it and stops it all.
// Its methods are safe for concurrent use.
type Upstream struct {
	name    string // normalized
	port    uint16 // 0 for SRV: any port is this upstream's
	bus     *events.Bus
	log     *slog.Logger
	src     *resolver.Source
	chk     *health.Checker
	bal     *balancer.Balancer
	pools   *http.Transport // settings of the Transports' per-address pools
	waitAll bool            // Initial Unhealthy: the first request waits for a healthy target
	running atomic.Bool
	// hasSettled: a request has found the upstream resolved; later ones
	// no longer wait for it.
	hasSettled atomic.Bool

	mu         sync.Mutex
	transports []weak.Pointer[transport] // every Transport still in use, swept at each change
	failure    error                     // the last DNS failure since the last address set
	failed     chan struct{}             // closed at the next DNS failure
	ended      chan struct{}             // closed when the current Run ends (open before the first)
	stopped    bool                      // a Run ended and none runs since
	started    chan struct{}             // closed when the first Run starts
	hasRun     bool                      // started is closed
}

// New checks cfg and returns the upstream it describes. It starts nothing;
// call Run. Invalid configuration gives a *ConfigError naming the field
// (matching ErrInvalidConfig), never a panic.
func New(cfg Config, opts ...Option) (*Upstream, error) {
	return newUpstream(cfg, buildOptions(opts))
}

func newUpstream(cfg Config, o options) (*Upstream, error) {
	if err := resolver.ValidateName(cfg.Name); err != nil {
		return nil, configErr(err)
	}
	name := resolver.NormalizeName(cfg.Name)
	bus := o.bus
	if bus == nil {
		bus = events.New(events.WithLogger(o.log))
	}
	rc := cfg.Resolver
	rc.Name, rc.Type, rc.Port = cfg.Name, cfg.recordType(), cfg.Port
	src, err := resolver.NewSource(rc, bus, append([]resolver.Option{resolver.WithLogger(o.log)}, o.resolver...)...)
	if err != nil {
		return nil, configErr(err)
	}
	hc := cfg.Health
	hc.Name = name
	if hc.Active, err = defaultProbe(hc.Active); err != nil {
		return nil, err
	}
	hopts := []health.Option{health.WithLogger(o.log)}
	if o.memory != nil && hc.Memory >= 0 {
		hopts = append(hopts, health.WithMemory(o.memory))
	}
	chk, err := health.NewChecker(hc, bus, append(hopts, o.health...)...)
	if err != nil {
		return nil, configErr(err)
	}
	// Results on the upstream's bus, where metrics count requests.
	bal, err := balancer.NewWithConfig(chk, balancer.Config{},
		append([]balancer.Option{balancer.WithBus(bus), balancer.WithLogger(o.log)}, cfg.Balancer...)...)
	if err != nil {
		return nil, configErr(err)
	}
	u := &Upstream{
		name:    name,
		log:     o.log,
		bus:     bus,
		src:     src,
		chk:     chk,
		bal:     bal,
		pools:   o.http,
		waitAll: chk.Config().Initial == health.Unhealthy,
		failed:  make(chan struct{}),
		ended:   make(chan struct{}),
		started: make(chan struct{}),
	}
	if rc.Type != resolver.SRV {
		u.port = cfg.Port
	}
	return u, nil
}

// Name returns the upstream's name, normalized.
func (u *Upstream) Name() string { return u.name }

// Run resolves the name, checks its addresses and keeps the Transports'
// connection pools clean of addresses that left, until ctx ends; then it
// stops the source and the checker, waits for them and releases the
// upstream's topics on the bus, and returns nil. It returns an error
// matching ErrRunning if the upstream is already running. No goroutine it starts outlives it.
//
// Run may be called again once it has returned: the upstream goes on from
// its state (its targets and their verdicts stay with its checker). With
// WithMemory, Run leaves that state in the Memory too, for a new Upstream
// of the name given the same Memory (DESIGN R9).
func (u *Upstream) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return fmt.Errorf("vigil: upstream %s: Run called while it runs: %w", u, ErrRunning)
	}
	defer u.running.Store(false)
	u.mu.Lock()
	if u.stopped {
		u.ended, u.stopped = make(chan struct{}), false
	}
	if !u.hasRun {
		u.hasRun = true
		close(u.started)
	}
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		close(u.ended)
		u.stopped = true
		u.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	unsubscribe := u.follow()
	u.log.Debug("vigil: upstream running", "upstream", u.String())
	var wg sync.WaitGroup
	var srcErr, chkErr error
	wg.Go(func() { chkErr = u.chk.Run(ctx) })
	wg.Go(func() { srcErr = u.src.Run(ctx) })
	u.sweep(ctx) // returns when ctx ends
	wg.Wait()
	unsubscribe()
	events.Release(u.bus, resolver.Topic(u.name))
	err := errors.Join(srcErr, chkErr)
	u.log.Debug("vigil: upstream stopped", "upstream", u.String(), "reason", context.Cause(ctx), "err", err)
	return err
}

// sweep closes the idle connections of every Transport to addresses that
// stopped being candidates, at each change of the checker, until ctx ends.
func (u *Upstream) sweep(ctx context.Context) {
	for {
		changed := u.chk.Changed()
		for _, t := range u.liveTransports() {
			t.Sweep()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// follow records DNS failures for WaitReady and the first request, and
// forgets them when an address set arrives. A partial failure (one family
// of an IP name, one SRV target) is not recorded: the rest of the set
// applies.
func (u *Upstream) follow() (unsubscribe func()) {
	unFail := events.Subscribe(u.bus, resolver.FailureTopic(u.name), func(f resolver.Failure) {
		if f.Partial {
			return
		}
		u.mu.Lock()
		u.failure = f.Err
		close(u.failed)
		u.failed = make(chan struct{})
		u.mu.Unlock()
	})
	unChange := events.Subscribe(u.bus, resolver.Topic(u.name), func(resolver.Change) {
		u.mu.Lock()
		u.failure = nil
		u.mu.Unlock()
	})
	return func() { unFail(); unChange() }
}

// lastFailure returns a channel closed at the next DNS failure and the last
// one since the last address set.
func (u *Upstream) lastFailure() (<-chan struct{}, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failed, u.failure
}

// runEnd returns a channel closed when the current (or next) Run ends, and
// whether a Run has ended with none running since.
func (u *Upstream) runEnd() (<-chan struct{}, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ended, u.stopped
}

// Pick returns a healthy address of the upstream, or an error matching
// balancer.ErrNoHealthy when there is none.
func (u *Upstream) Pick() (resolver.Address, error) { return u.bal.Pick() }

// Checker returns the upstream's health checker.
func (u *Upstream) Checker() *health.Checker { return u.chk }

// Source returns the upstream's DNS source.
func (u *Upstream) Source() *resolver.Source { return u.src }

// Balancer returns the upstream's balancer.
func (u *Upstream) Balancer() *balancer.Balancer { return u.bal }

// Bus returns the bus the upstream's events are published on.
func (u *Upstream) Bus() *events.Bus { return u.bus }

// String returns the upstream's name and, for A/AAAA, its port.
func (u *Upstream) String() string {
	if u.port == 0 {
		return u.name
	}
	return fmt.Sprintf("%s:%d", u.name, u.port)
}

// liveTransports returns the Transports still in use, forgetting those
// their users dropped.
func (u *Upstream) liveTransports() []*transport {
	u.mu.Lock()
	defer u.mu.Unlock()
	live := make([]*transport, 0, len(u.transports))
	kept := u.transports[:0]
	for _, w := range u.transports {
		if t := w.Value(); t != nil {
			live = append(live, t)
			kept = append(kept, w)
		}
	}
	clear(u.transports[len(kept):])
	u.transports = kept
	return live
}
