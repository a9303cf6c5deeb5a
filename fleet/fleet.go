package fleet

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Fleet is this client's membership of a fleet that shares active
// verdicts through NATS JetStream. Create it with New, attach upstreams or
// checkers, and Run it. Its methods are safe for concurrent use.
type Fleet struct {
	cfg      Config
	log      *slog.Logger
	wait     time.Duration
	natsOpts []nats.Option

	epoch   atomic.Int64  // when the current Run started (Unix ns): the first half of every version written
	seq     atomic.Uint64 // the second half: grows with every verdict written
	leaving atomic.Bool   // Run is ending: sessions delete their registrations
	sharing atomic.Bool
	stats   counters

	mu       sync.Mutex
	running  bool
	groups   map[string]*group
	attached chan struct{} // buffered 1: the groups changed
}

// counters are the fleet's Stats, kept as atomics.
type counters struct {
	sessions, fallbacks, writes, conflicts, applied, ignored atomic.Uint64
}

// Stats are a fleet's counters.
type Stats struct {
	Sharing   bool   // verdicts are shared now
	Sessions  uint64 // times sharing started (the first connection, and each one after a fallback)
	Fallbacks uint64 // times sharing stopped while Run went on: connection lost, bucket failure
	Writes    uint64 // verdicts this member wrote
	Conflicts uint64 // writes that found their key changed by another writer and looked again
	Applied   uint64 // shared verdicts applied to a checker (SetActive)
	Ignored   uint64 // values ignored: not newer than the one held, malformed, or of a newer format
}

// New checks cfg and returns a fleet member. It connects to nothing unless
// WithWait asks it to; invalid configuration is a *ConfigError.
func New(cfg Config, opts ...Option) (*Fleet, error) {
	n, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		cfg:      n,
		log:      slog.New(slog.DiscardHandler),
		groups:   make(map[string]*group),
		attached: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(f)
	}
	if f.wait > 0 {
		if err := f.check(f.wait); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Member returns this member's id.
func (f *Fleet) Member() string { return f.cfg.Member }

// Config returns the fleet's configuration with defaults filled in.
func (f *Fleet) Config() Config { return f.cfg }

// Attach shares the verdicts of u's checker with the fleet, from now
// until Detach(u.Name()) or the end of Run; the fleet may be running.
func (f *Fleet) Attach(u *vigil.Upstream) error {
	if u == nil {
		return fmt.Errorf("%w: nil upstream", ErrInvalidConfig)
	}
	return f.AttachChecker(u.Checker(), u.Bus())
}

// AttachChecker shares the verdicts of c, whose probe results are
// published on bus (the bus c was made with), with the fleet. The checker's
// upstream name (Config().Name) identifies it in the fleet: every member
// checking that name shares with the others. The checker must probe
// actively in both states (no negative Interval), else ErrNotProbed; a name
// attached already is ErrAttached.
func (f *Fleet) AttachChecker(c *health.Checker, bus *events.Bus) error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: nil checker", ErrInvalidConfig)
	case bus == nil:
		return fmt.Errorf("%w: nil bus: the fleet follows the checker's probe results on it", ErrInvalidConfig)
	}
	cfg := c.Config()
	if cfg.Active.Healthy.Interval < 0 || cfg.Active.Unhealthy.Interval < 0 {
		return fmt.Errorf("%w: %s probes healthy targets every %v and unhealthy ones every %v",
			ErrNotProbed, cfg.Name, cfg.Active.Healthy.Interval, cfg.Active.Unhealthy.Interval)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.groups[cfg.Name]; ok {
		return fmt.Errorf("%w: %s", ErrAttached, cfg.Name)
	}
	f.groups[cfg.Name] = newGroup(f, c, bus, cfg.Name)
	f.poke()
	return nil
}

// Detach stops sharing the verdicts of the upstream name (normalized as
// resolver.NormalizeName does) and reports whether it was attached. Its
// checker probes every target again; the other members take over the
// addresses this member probed for them once its registration is gone
// (at once if connected).
func (f *Fleet) Detach(name string) bool {
	name = resolver.NormalizeName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok {
		return false
	}
	g.detached.Store(true)
	delete(f.groups, name)
	f.poke()
	return true
}

// poke tells a running session that the groups changed; f.mu is held.
func (f *Fleet) poke() {
	select {
	case f.attached <- struct{}{}:
	default:
	}
}

// attachedGroups returns the attached groups.
func (f *Fleet) attachedGroups() map[string]*group {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]*group, len(f.groups))
	for k, g := range f.groups {
		m[k] = g
	}
	return m
}

// Sharing reports whether verdicts are shared now: connected, with both
// buckets open. While they are not, every attached checker probes all its
// targets.
func (f *Fleet) Sharing() bool { return f.sharing.Load() }

// Probing returns the addresses of the upstream name that this member
// probes for the fleet, in canonical order, and the live members of the
// upstream's fleet (this one included), sorted; both nil while its
// verdicts are not shared.
func (f *Fleet) Probing(name string) (addrs []resolver.Address, members []string) {
	f.mu.Lock()
	g := f.groups[resolver.NormalizeName(name)]
	f.mu.Unlock()
	if g == nil {
		return nil, nil
	}
	return g.snapshot()
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	return Stats{
		Sharing:   f.sharing.Load(),
		Sessions:  f.stats.sessions.Load(),
		Fallbacks: f.stats.fallbacks.Load(),
		Writes:    f.stats.writes.Load(),
		Conflicts: f.stats.conflicts.Load(),
		Applied:   f.stats.applied.Load(),
		Ignored:   f.stats.ignored.Load(),
	}
}
