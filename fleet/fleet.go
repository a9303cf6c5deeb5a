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

	epoch   atomic.Int64 // when the current Run started (Unix ns): written in every value
	leaving atomic.Bool  // Run is ending: sessions delete this member's values
	sharing atomic.Bool
	why     atomic.Value // string: why verdicts are not shared now
	denied  chan error   // buffered 1: permission errors reported by a dialled connection
	stats   counters

	mu       sync.Mutex
	running  bool
	groups   map[string]*group
	attached chan struct{} // buffered 1: the groups changed
}

// counters are the fleet's Stats, kept as atomics.
type counters struct {
	sessions, fallbacks, denied, writes, received, conflicts, applied, ignored, disagreements, outvoted atomic.Uint64
}

// Stats are a fleet's counters.
type Stats struct {
	Sharing bool // verdicts are shared now
	// NotSharing says why verdicts are not shared now (not connected, the
	// last failure, a refusal of the server); empty while they are.
	NotSharing string
	Sessions   uint64 // times sharing started (the first connection, and each one after a fallback)
	Fallbacks  uint64 // times sharing stopped while Run went on: connection lost, bucket failure, refusal
	// Denied counts the times sharing stopped, or could not start, because
	// the server's permissions refused this member an operation (ErrDenied).
	Denied    uint64
	Writes    uint64 // values this member wrote: verdicts and claims
	Received  uint64 // changes received from the bucket: values and removals
	Conflicts uint64 // values of another instance with this member's id found under its keys
	Applied   uint64 // fleet verdicts applied to a checker (SetActive)
	Ignored   uint64 // values ignored: malformed, of a newer format, of an older instance, under another's key
	// Disagreements counts the probers found to keep disagreeing with the
	// other probers of an address (this member included), once each time
	// it starts; Outvoted counts those that were this member.
	Disagreements uint64
	Outvoted      uint64
}

// New checks cfg and returns a fleet member. It connects to nothing unless
// WithWait asks it to; invalid configuration is a *ConfigError.
func New(cfg Config, opts ...Option) (*Fleet, error) {
	n, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	f := &Fleet{
		cfg:      n,
		log:      o.log,
		wait:     o.wait,
		natsOpts: o.natsOpts,
		denied:   make(chan error, 1),
		groups:   make(map[string]*group),
		attached: make(chan struct{}, 1),
	}
	f.why.Store("not running")
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
		return &ConfigError{Field: "upstream", Reason: "nil"}
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
		return &ConfigError{Field: "checker", Reason: "nil"}
	case bus == nil:
		return &ConfigError{Field: "bus", Reason: "nil: the fleet follows the checker's probe results on it"}
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
// addresses this member probed for them at once (its values are deleted;
// if they cannot be, once they are late).
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

// Sharing reports whether verdicts are shared now: connected, with the
// bucket open. While they are not, every attached checker probes all its
// targets.
func (f *Fleet) Sharing() bool { return f.sharing.Load() }

// Probing returns the addresses of the upstream name that this member
// probes for the fleet, in canonical order, and the members it sees
// probing the upstream's addresses that it holds (this one included),
// sorted; both nil while its verdicts are not shared. Members only
// learn of each other through the addresses they share: there is no
// membership list (Roles has the details per address).
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
	st := Stats{
		Sharing:       f.sharing.Load(),
		Sessions:      f.stats.sessions.Load(),
		Fallbacks:     f.stats.fallbacks.Load(),
		Denied:        f.stats.denied.Load(),
		Writes:        f.stats.writes.Load(),
		Received:      f.stats.received.Load(),
		Conflicts:     f.stats.conflicts.Load(),
		Applied:       f.stats.applied.Load(),
		Ignored:       f.stats.ignored.Load(),
		Disagreements: f.stats.disagreements.Load(),
		Outvoted:      f.stats.outvoted.Load(),
	}
	if !st.Sharing {
		st.NotSharing, _ = f.why.Load().(string)
	}
	return st
}
