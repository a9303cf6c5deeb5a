package resolver

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
)

// maxFailures caps the consecutive-failure count that drives the backoff.
const maxFailures = 64

// Source follows one DNS name and publishes its address set on a bus.
// Create one with NewSource; it starts resolving when Run is called.
type Source struct {
	cfg     Config
	bus     *events.Bus
	log     *slog.Logger
	backoff backoff
	lk      *lookup
	topic   events.Topic[Change]
	failed  events.Topic[Failure]
	host    string // Change.Name and Failure.Name: cfg.Name normalized (NormalizeName)
	running atomic.Bool

	mu        sync.Mutex // guards the fields below
	addrs     []Address  // the last published set
	published bool       // a Change has been published
	version   uint64     // the last published Version
}

// NewSource checks cfg and returns a Source that will publish the address
// set of cfg.Name on bus (which may be nil: then Addresses is the only
// output). It starts nothing; call Run.
//
// Invalid configuration gives an error matching ErrInvalidConfig, a
// *ConfigError naming the field. When cfg.Servers is empty the servers of
// /etc/resolv.conf are used, or 127.0.0.1:53 with a logged warning when
// that file is missing.
func NewSource(cfg Config, bus *events.Bus, opts ...Option) (*Source, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.withDefaults()
	servers, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		servers = systemServers(o.resolvConf, o.log)
	}
	cfg.Servers = servers
	return &Source{
		cfg:     cfg,
		bus:     bus,
		log:     o.log.With("name", cfg.Name, "type", cfg.Type.String()),
		backoff: o.backoff,
		lk:      &lookup{ex: netExchanger{timeout: cfg.Timeout}, servers: servers, observe: queryObserver(bus, NormalizeName(cfg.Name))},
		topic:   Topic(cfg.Name),
		failed:  FailureTopic(cfg.Name),
		host:    NormalizeName(cfg.Name),
	}, nil
}

// Addresses returns a copy of the current address set (the last one
// published, or found equal to the latest Change on the bus), in canonical
// order; it is empty before the first successful resolution.
func (s *Source) Addresses() []Address {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// runState is what one Run remembers between resolutions.
type runState struct {
	failures int               // consecutive failures, for the backoff
	nxSince  time.Time         // first NXDOMAIN/NODATA of the current streak
	seen     map[Key]time.Time // when each published address was last in an answer
	// vanished maps each SRV target whose A and AAAA lookups are negative
	// to the first resolution of the current streak that found it so.
	vanished map[string]time.Time
}

// Run resolves the name now, then whenever the answer's TTL runs out (or,
// after a failure, when the backoff says), publishing Changes and Failures,
// until ctx ends; then it returns nil. It returns ErrRunning if the Source
// is already running. No goroutine it starts outlives it.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	st := &runState{seen: make(map[Key]time.Time), vanished: make(map[string]time.Time)}
	for ctx.Err() == nil {
		wait := s.step(ctx, st)
		if ctx.Err() != nil {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// step resolves once, applies the outcome and returns the time until the
// next resolution.
func (s *Source) step(ctx context.Context, st *runState) time.Duration {
	res, err := s.lk.resolve(ctx, s.cfg)
	if ctx.Err() != nil {
		return 0
	}
	now := time.Now()
	ttl := time.Duration(res.ttl) * time.Second
	switch {
	case err == nil:
		st.failures = 0
		st.nxSince = time.Time{}
		wait := refreshDelay(ttl, s.cfg.MinTTL, s.cfg.MaxTTL)
		held, heldFor := s.holdVanished(res.vanished, now, st)
		if heldFor > 0 {
			wait = s.until(wait, heldFor)
		}
		if expiry := s.apply(res.addrs, held, now, st); expiry > 0 {
			wait = s.until(wait, expiry)
		}
		return wait
	case errors.Is(err, ErrNXDomain), errors.Is(err, ErrNoData):
		st.failures = 0
		if st.nxSince.IsZero() {
			st.nxSince = now
		}
		wait := refreshDelay(ttl, s.cfg.MinTTL, s.cfg.MaxTTL)
		if held := now.Sub(st.nxSince); held >= s.cfg.NXDomainHold {
			clear(st.seen)
			s.publish(nil)
		} else {
			wait = s.until(wait, s.cfg.NXDomainHold-held)
		}
		s.fail(err, wait)
		return wait
	default:
		st.failures = min(st.failures+1, maxFailures)
		wait := s.backoff.delay(st.failures)
		s.fail(err, wait)
		return wait
	}
}

// until returns the wait before the next resolution when one is due in
// wait and a hold ends in end: the sooner of the two, but never sooner than
// MinTTL. A hold therefore ends at the first resolution at or after its end.
func (s *Source) until(wait, end time.Duration) time.Duration {
	return min(wait, max(end, s.cfg.MinTTL))
}

// holdVanished returns the last published addresses of the SRV targets in
// vanished (whose A and AAAA lookups were negative) that NXDomainHold still
// keeps, as the queried name itself is kept after NXDOMAIN/NODATA, and when
// the earliest of those holds ends (0 if none is kept). A target that is
// no longer vanished starts a new hold when it vanishes again.
func (s *Source) holdVanished(vanished []string, now time.Time, st *runState) ([]Address, time.Duration) {
	if len(vanished) == 0 {
		clear(st.vanished)
		return nil, 0
	}
	since := make(map[string]time.Time, len(vanished))
	for _, host := range vanished {
		t, ok := st.vanished[host]
		if !ok {
			t = now
		}
		since[host] = t
	}
	st.vanished = since // a target that is back is forgotten
	var held []Address
	var ends time.Duration
	for _, a := range s.Addresses() {
		t, ok := since[a.Hostname]
		if !ok {
			continue
		}
		left := s.cfg.NXDomainHold - now.Sub(t)
		if left <= 0 {
			continue
		}
		held = append(held, a)
		if ends == 0 || left < ends {
			ends = left
		}
	}
	return held, ends
}

// apply publishes answer, plus the addresses held (see holdVanished) and
// those HoldObsolete still keeps, and returns when the earliest address
// HoldObsolete keeps expires (0 if none is kept). Held addresses do not
// count as seen in an answer.
func (s *Source) apply(answer, held []Address, now time.Time, st *runState) time.Duration {
	if s.cfg.HoldObsolete <= 0 {
		s.publish(withHeld(answer, held))
		return 0
	}
	in := make(map[Key]bool, len(answer)+len(held))
	for _, a := range answer {
		k := a.Key()
		in[k] = true
		st.seen[k] = now
	}
	for _, a := range held {
		in[a.Key()] = true
	}
	set := withHeld(answer, held)
	var expiry time.Duration
	for _, a := range s.Addresses() {
		k := a.Key()
		if in[k] {
			continue
		}
		left := s.cfg.HoldObsolete - now.Sub(st.seen[k])
		if left <= 0 {
			delete(st.seen, k)
			continue
		}
		set = append(set, a)
		if expiry == 0 || left < expiry {
			expiry = left
		}
	}
	s.publish(canonical(set))
	return expiry
}

// publish makes set the current one and publishes a Change if it differs
// from the last published set. Before this Source has published anything,
// the last published set is that of the latest Change on the bus for its
// name (from an earlier Source for that name), if there is one: an
// unchanged set publishes nothing, and Added and Removed are relative to
// that Change.
func (s *Source) publish(set []Address) {
	latest, ok := events.Latest(s.bus, s.topic)
	s.mu.Lock()
	prev, known := s.addrs, s.published
	if !known && ok {
		prev, known = latest.Addresses, true
	}
	if known && slices.Equal(set, prev) {
		s.addrs, s.published = slices.Clone(set), true
		s.mu.Unlock()
		return
	}
	v := max(s.version+1, versionClock())
	if ok {
		v = max(v, latest.Version+1)
	}
	c := Change{
		Name:      s.host,
		Version:   v,
		Addresses: slices.Clone(set),
		Added:     diff(set, prev),
		Removed:   diff(prev, set),
	}
	s.addrs, s.published, s.version = slices.Clone(set), true, v
	s.mu.Unlock()
	s.log.Debug("resolver: address set changed", "version", v,
		"addresses", len(c.Addresses), "added", len(c.Added), "removed", len(c.Removed))
	events.Publish(s.bus, s.topic, c)
}

// withHeld returns answer and held as one set in canonical order.
func withHeld(answer, held []Address) []Address {
	if len(held) == 0 {
		return slices.Clone(answer)
	}
	return canonical(append(slices.Clone(answer), held...))
}

// fail logs err and publishes it as a Failure.
func (s *Source) fail(err error, next time.Duration) {
	s.log.Warn("resolver: resolution failed; keeping the last address set",
		"err", err, "retry_in", next)
	events.Publish(s.bus, s.failed, Failure{Name: s.host, Err: err, Next: next})
}

// diff returns the addresses of a whose target is not in b.
func diff(a, b []Address) []Address {
	in := make(map[Key]bool, len(b))
	for _, x := range b {
		in[x.Key()] = true
	}
	var out []Address
	for _, x := range a {
		if !in[x.Key()] {
			out = append(out, x)
		}
	}
	return out
}
