package resolver

import (
	"context"
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
	cfg        Config
	timeoutSet bool // Config.Timeout was given: resolv.conf's timeout does not apply
	bus        *events.Bus
	log        *slog.Logger
	lk         *lookup
	static     *plan           // the plan when Config.Servers names the servers
	conf       *resolvConfFile // else the file the plan comes from
	topic      events.Topic[Change]
	failed     events.Topic[Failure]
	recovered  events.Topic[Recovery]
	host       string   // Change.Name and Failure.Name: cfg.Name normalized (NormalizeName)
	types      []string // the query types asked, for State
	running    atomic.Bool
	wake       chan struct{} // ResolveNow's request, buffered: calls coalesce

	mu        sync.Mutex // guards the fields below
	addrs     []Address  // the last published set
	published bool       // a Change has been published
	version   uint64     // the last published Version
	status    status     // the rest of State
}

// NewSource checks cfg and returns a Source that will publish the address
// set of cfg.Name on bus (which may be nil: then Addresses and State are
// the only output). It starts nothing; call Run.
//
// Invalid configuration gives an error matching ErrInvalidConfig, a
// *ConfigError naming the field. When cfg.Servers is empty the servers of
// /etc/resolv.conf (see WithResolvConf) are used, or 127.0.0.1:53 with a
// logged warning when that file is missing.
func NewSource(cfg Config, bus *events.Bus, opts ...Option) (*Source, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	timeoutSet := cfg.Timeout != 0
	cfg = cfg.withDefaults()
	if o.backoff != nil {
		cfg.Backoff = *o.backoff
	}
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	host := NormalizeName(cfg.Name)
	log := o.log.With(slog.String("name", host), slog.String("type", cfg.Type.String()))
	ex := o.exchanger
	if ex == nil {
		nx := newNetExchanger(log)
		nx.noEDNSFor = o.noEDNSFor
		ex = nx
	}
	s := &Source{
		cfg:        cfg,
		timeoutSet: timeoutSet,
		bus:        bus,
		log:        log,
		lk:         &lookup{ex: ex, observe: queryObserver(bus, host)},
		topic:      Topic(host),
		failed:     FailureTopic(host),
		recovered:  RecoveryTopic(host),
		host:       host,
		types:      cfg.queryTypes(),
		wake:       make(chan struct{}, 1),
	}
	if len(cfg.Servers) > 0 {
		s.static = &plan{
			servers: cfg.Servers, attempts: 1, timeout: cfg.Timeout,
			names: candidates(cfg.Name, cfg.Search, cfg.ndots(1)),
		}
	} else {
		s.conf = newResolvConfFile(o.resolvConf, o.port, log)
	}
	s.status.candidates = hostnames(s.plan().names)
	return s, nil
}

// plan returns how the next resolution asks: with the configured servers,
// or as resolv.conf says now. Config.Search and Config.Ndots, when set,
// replace what resolv.conf says of them.
func (s *Source) plan() *plan {
	if s.static != nil {
		return s.static
	}
	c, _ := s.conf.current()
	search := s.cfg.Search
	if len(search) == 0 {
		search = c.search
	}
	p := &plan{
		servers: c.servers, attempts: max(c.attempts, 1), rotate: c.rotate, timeout: s.cfg.Timeout,
		names: candidates(s.cfg.Name, search, s.cfg.ndots(c.ndots)),
	}
	if !s.timeoutSet && c.timeout > 0 {
		p.timeout = c.timeout
	}
	return p
}

// Addresses returns a copy of the current address set (the last one
// published, or found equal to the latest Change on the bus), in canonical
// order; it is empty before the first successful resolution.
func (s *Source) Addresses() []Address {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// ResolveNow asks for a resolution sooner than the TTL or the backoff has
// it due, as when a connection to one of the addresses failed (grpc-go's
// resolver.ResolveNow). It never blocks. The resolution starts at once, but
// never sooner than MinTTL after the previous one: calls in a burst, or
// more than one per MinTTL, make one resolution, and a call when a
// resolution is due sooner anyway changes nothing. A call made while a
// resolution runs asks for one after it; a call made while Run is not
// running is answered by the first resolution of the next Run.
func (s *Source) ResolveNow() {
	select {
	case s.wake <- struct{}{}:
	default: // one is pending: this call is part of it
	}
}

// runState is what one Run remembers between resolutions.
type runState struct {
	at       time.Time         // when the last resolution ended: what its wait counts from
	failures int               // consecutive failed resolutions (full or partial), for the backoff
	nxSince  time.Time         // first NXDOMAIN/NODATA of the current streak
	seen     map[Key]time.Time // when each published address was last in an answer
	// holds maps each SRV target family whose lookup was negative or
	// failed to the first resolution of the current streak that found it
	// so.
	holds  map[part]time.Time
	names  []string  // the candidates of the last plan
	follow string    // the candidate followed: the one that answered last
	answer []Address // the last answer, before holds: to tell an answer's change from a hold's end
	streak streak    // the Failures published in a row
}

// streak counts the Failures published in a row, for the Recovery that
// ends them.
type streak struct {
	n     int
	since time.Time
	err   error
}

// Run resolves the name now, then whenever the answer's TTL runs out (or,
// after a failure, when the backoff says, or sooner when ResolveNow asks),
// publishing Changes and Failures, until ctx ends; then it returns nil. It
// returns ErrRunning if the Source is already running. No goroutine it
// starts outlives it.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	defer s.setNext(time.Time{})
	select {
	case <-s.wake: // asked before Run: the first resolution answers it
	default:
	}
	st := &runState{seen: make(map[Key]time.Time), holds: make(map[part]time.Time)}
	for {
		s.setNext(time.Now())
		wait := s.step(ctx, st)
		if ctx.Err() != nil || !s.sleep(ctx, st.at, wait) {
			return nil
		}
	}
}

// sleep waits until the resolution due wait after at, or one that
// ResolveNow asks for: at once, but not sooner than MinTTL after at. It
// returns false when ctx ends first.
func (s *Source) sleep(ctx context.Context, at time.Time, wait time.Duration) bool {
	due := at.Add(wait)
	s.setNext(due)
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-s.wake:
			if early := at.Add(s.cfg.MinTTL); early.Before(due) {
				due = early
				s.setNext(due)
				t.Reset(time.Until(due))
			}
		}
	}
}

// step resolves once, applies the outcome and returns the time until the
// next resolution.
func (s *Source) step(ctx context.Context, st *runState) time.Duration {
	p := s.plan()
	if !slices.Equal(p.names, st.names) {
		if st.follow != "" {
			s.log.Info("resolver: the search list changed; trying the candidates again in their new order",
				slog.Any("candidates", hostnames(p.names)))
		}
		st.names, st.follow = p.names, ""
		s.setCandidates(hostnames(p.names))
	}
	res, err := s.lk.resolve(ctx, p, s.cfg, st.follow)
	if ctx.Err() != nil {
		return 0
	}
	now := time.Now()
	st.at = now
	ttl := time.Duration(res.ttl) * time.Second
	switch {
	case err == nil:
		s.follow(st, res.name, len(p.names))
		s.answered(Answer{Addresses: slices.Clone(res.addrs), At: now, TTL: ttl}, st.follow)
		st.nxSince = time.Time{}
		wait := refreshDelay(ttl, s.cfg.MinTTL, s.cfg.MaxTTL)
		held, heldFor := s.holdParts(res, now, st)
		if heldFor > 0 {
			wait = s.until(wait, heldFor)
		}
		why := "the DNS answer changed"
		if slices.Equal(res.addrs, st.answer) {
			why = "a hold ended"
		}
		st.answer = slices.Clone(res.addrs)
		if expiry := s.apply(res.addrs, held, now, st, why); expiry > 0 {
			wait = s.until(wait, expiry)
		}
		if res.err != nil {
			st.failures = min(st.failures+1, maxFailures)
			wait = min(wait, s.cfg.Backoff.delay(st.failures))
			s.log.Warn("resolver: resolution failed in part; applied the rest, the failed parts keep their last addresses",
				slog.Any("err", res.err), slog.String("retry_in", wait.String()), slog.Int("kept", len(held)),
				slog.Int("failures", st.failures))
			s.fail(st, Failure{Name: s.host, Err: res.err, Next: wait, Partial: true}, now)
			return wait
		}
		st.failures = 0
		s.recover(st, now)
		return wait
	case negative(err):
		st.failures = 0
		st.follow = ""
		s.setFollowing("")
		st.answer = nil
		if st.nxSince.IsZero() {
			st.nxSince = now
		}
		wait := refreshDelay(ttl, s.cfg.MinTTL, s.cfg.MaxTTL)
		if held := now.Sub(st.nxSince); held >= s.cfg.NXDomainHold {
			clear(st.seen)
			clear(st.holds)
			s.publish(nil, "the name had no records for NXDomainHold ("+s.cfg.NXDomainHold.String()+")")
			s.log.Warn("resolver: the name has no records; NXDomainHold ended, the address set is empty",
				slog.Any("err", err), slog.String("retry_in", wait.String()))
		} else {
			left := s.cfg.NXDomainHold - held
			wait = s.until(wait, left)
			s.log.Warn("resolver: the name has no records; keeping the last address set until NXDomainHold ends",
				slog.Any("err", err), slog.String("hold_left", left.String()), slog.String("retry_in", wait.String()))
		}
		s.fail(st, Failure{Name: s.host, Err: err, Next: wait}, now)
		return wait
	default:
		st.failures = min(st.failures+1, maxFailures)
		wait := s.cfg.Backoff.delay(st.failures)
		s.log.Warn("resolver: resolution failed; keeping the last address set",
			slog.Any("err", err), slog.String("retry_in", wait.String()), slog.Int("failures", st.failures))
		s.fail(st, Failure{Name: s.host, Err: err, Next: wait}, now)
		return wait
	}
}

// follow remembers the candidate that answered, and says so when the name
// has several (a search list) and it is another than before.
func (s *Source) follow(st *runState, name string, candidates int) {
	if name == st.follow {
		return
	}
	if candidates > 1 {
		because := "it is the first candidate that has records"
		if st.follow != "" {
			because = "the candidate followed before, " + NormalizeName(st.follow) + ", stopped existing"
		}
		s.log.Info("resolver: following a search candidate", slog.String("candidate", NormalizeName(name)),
			slog.String("because", because))
	}
	st.follow = name
}

// until returns the wait before the next resolution when one is due in
// wait and a hold ends in end: the sooner of the two, but never sooner than
// MinTTL. A hold therefore ends at the first resolution at or after its end.
func (s *Source) until(wait, end time.Duration) time.Duration {
	return min(wait, max(end, s.cfg.MinTTL))
}

// fail publishes f and counts it in the streak.
func (s *Source) fail(st *runState, f Failure, now time.Time) {
	if st.streak.n == 0 {
		st.streak.since = now
	}
	st.streak.n++
	st.streak.err = f.Err
	s.mu.Lock()
	s.status.failures, s.status.err, s.status.errAt = st.streak.n, f.Err, now
	s.mu.Unlock()
	events.Publish(s.bus, s.failed, f)
}

// recover ends a streak of Failures, if there is one: it logs and
// publishes a Recovery.
func (s *Source) recover(st *runState, now time.Time) {
	if st.streak.n == 0 {
		return
	}
	r := Recovery{Name: s.host, Failures: st.streak.n, Duration: now.Sub(st.streak.since), Err: st.streak.err}
	st.streak = streak{}
	s.mu.Lock()
	s.status.failures = 0
	s.mu.Unlock()
	s.log.Info("resolver: resolution recovered", slog.Int("failures", r.Failures),
		slog.String("failing_for", r.Duration.String()), slog.Any("last_err", r.Err))
	events.Publish(s.bus, s.recovered, r)
}

// hostnames returns names as Address.Hostname carries them.
func hostnames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = NormalizeName(n)
	}
	return out
}
