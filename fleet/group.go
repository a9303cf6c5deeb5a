package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// maxPatterns is the most addresses a group watches one by one; beyond,
// it watches the whole upstream (each member then also receives the values
// on addresses it does not hold, still r per address and interval).
const maxPatterns = 64

// drainMax bounds how many changes the loop takes in a row before it
// decides: a burst is decided once.
const drainMax = 256

// group is one attached upstream: its checker, and while verdicts are
// shared, the loop that decides what the checker probes and which verdicts
// it takes from the fleet.
type group struct {
	f        *Fleet
	name     string
	chk      *health.Checker
	bus      *events.Bus
	detached atomic.Bool // Detach: its session leaves the fleet as it ends

	inMu   sync.Mutex
	probed map[resolver.Key]health.ProbeResult // probes that ended since the loop last looked; nil while not sharing
	wake   chan struct{}                       // buffered 1

	snapMu sync.Mutex
	roles  map[resolver.Key]*roleSnap // what Roles and Probing read; nil while not sharing
}

func newGroup(f *Fleet, chk *health.Checker, bus *events.Bus, name string) *group {
	return &group{f: f, name: name, chk: chk, bus: bus, wake: make(chan struct{}, 1)}
}

// onProbe notes a probe that ended; it runs on the bus and never blocks.
func (g *group) onProbe(r health.ProbeResult) {
	g.inMu.Lock()
	if g.probed != nil {
		g.probed[r.Address.Key()] = r
	}
	g.inMu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// sharing is the state of one sharing session of a group.
type sharing struct {
	g        *group
	st       store
	v        *view
	w        *writer
	epoch    int64
	cfg      health.Config
	watch    watch
	patterns []string
	ready    bool // the watch has replayed what the bucket held
	dirty    map[*address]bool
	due      map[*address]time.Time // when each address must be decided again
	selected map[resolver.Key]bool  // what the probe filter selects
	filterOK bool                   // the probe filter matches selected
	late     map[string]bool        // newer-format writers already logged
}

// share shares the group's verdicts through st until ctx ends (nil) or
// something fails (the error); in both cases the checker probes every
// target again before it returns.
func (g *group) share(ctx context.Context, st store, epoch int64) error {
	ctx, cancel := context.WithCancel(ctx)
	cfg := g.chk.Config()
	s := &sharing{
		g: g, st: st, epoch: epoch, cfg: cfg,
		v: newView(viewConfig{
			self: g.f.cfg.Member, zone: g.f.cfg.Zone, probers: g.f.cfg.Probers, quorum: g.f.cfg.Quorum,
			healthy: cfg.Active.Healthy.Interval, unhealthy: cfg.Active.Unhealthy.Interval, timeout: cfg.Active.Timeout,
		}),
		w:        newWriter(g.f, g.name, st, epoch),
		dirty:    make(map[*address]bool),
		due:      make(map[*address]time.Time),
		selected: make(map[resolver.Key]bool),
		late:     make(map[string]bool),
	}
	var wg sync.WaitGroup
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	wg.Go(func() { werr <- s.w.run(wctx) })
	// finish stops the writer: a write it might still be making cannot
	// come after the removals that leaving makes.
	finish := func() {
		stopWriter()
		wg.Wait()
	}
	defer func() {
		cancel()
		if s.watch != nil {
			s.watch.stop()
		}
		finish()
		g.chk.SetProbeFilter(nil)
		g.inMu.Lock()
		g.probed = nil
		g.inMu.Unlock()
		g.snapMu.Lock()
		g.roles = nil
		g.snapMu.Unlock()
	}()

	g.inMu.Lock()
	g.probed = make(map[resolver.Key]health.ProbeResult)
	g.inMu.Unlock()
	unsubscribe := events.Subscribe(g.bus, health.ProbeTopic(g.name), g.onProbe)
	defer unsubscribe()

	// changed is kept until it fires: taken again at every turn, a change
	// made while another case won the select would be missed.
	changed := g.chk.Changed()
	s.setTargets()
	if err := s.rewatch(ctx); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	replay := time.NewTimer(openTimeout)
	defer replay.Stop()
	for {
		select {
		case <-ctx.Done():
			if g.f.leaving.Load() || g.detached.Load() {
				finish()
				if err := s.w.leave(); err != nil {
					g.f.log.Warn("fleet: could not leave: the others take this member's places once its values are late",
						"name", g.name, "member", g.f.cfg.Member, "error", err)
				}
			}
			return nil
		case err := <-werr:
			return err
		case c, ok := <-s.watch.changes():
			for n := 0; ; n++ {
				if !ok {
					return ctxOr(ctx, fmt.Errorf("the watch of %s ended", st.bucket()))
				}
				if err := s.onChange(c); err != nil {
					return err
				}
				more := false
				if n < drainMax {
					select {
					case c, ok = <-s.watch.changes():
						more = true
					default:
					}
				}
				if !more {
					break
				}
			}
		case <-g.wake:
			s.writeProbed()
		case <-changed:
			changed = g.chk.Changed() // before reading the targets
			if s.setTargets() {
				if err := s.rewatch(ctx); err != nil {
					return err
				}
				replay.Reset(openTimeout)
			}
		case <-timer.C:
		case <-replay.C:
			if !s.ready {
				return fmt.Errorf("the watch of %s did not replay the bucket within %v", st.bucket(), openTimeout)
			}
		}
		if !s.ready {
			continue
		}
		next := s.evaluate(time.Now())
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// setTargets takes the checker's targets into the view; it reports whether
// the watch must start again: the addresses to watch changed, or addresses
// were added (their values must be read).
func (s *sharing) setTargets() bool {
	ts := s.g.chk.Targets()
	as := make([]resolver.Address, len(ts))
	for i, t := range ts {
		as[i] = t.Address
	}
	added, changed := s.v.setTargets(as)
	if !changed {
		return false
	}
	for x := range s.dirty {
		if s.v.addrs[x.addr.Key()] != x {
			delete(s.dirty, x)
		}
	}
	for x := range s.due {
		if s.v.addrs[x.addr.Key()] != x {
			delete(s.due, x)
		}
	}
	for k := range s.selected {
		if s.v.addrs[k] == nil {
			delete(s.selected, k)
		}
	}
	s.g.snapMu.Lock()
	for k := range s.g.roles {
		if s.v.addrs[k] == nil {
			delete(s.g.roles, k)
		}
	}
	s.g.snapMu.Unlock()
	s.filterOK = false
	var patterns []string
	if len(s.v.addrs) > maxPatterns {
		patterns = []string{upstreamPattern(s.g.name)}
	} else {
		for _, x := range s.v.addrs {
			patterns = append(patterns, addressPattern(s.g.name, x.str))
		}
		slices.Sort(patterns)
	}
	if slices.Equal(patterns, s.patterns) && !added {
		return false
	}
	s.patterns = patterns
	return true
}

// rewatch starts watching the addresses held (stopping the previous
// watch): every value on them is replayed, then decisions resume.
func (s *sharing) rewatch(ctx context.Context) error {
	if s.watch != nil {
		s.watch.stop()
		s.watch = nil
	}
	s.ready = false
	if len(s.patterns) == 0 {
		s.ready = true // nothing held: nothing to watch
		s.watch = idleWatch{}
		return nil
	}
	s.v.beginReplay()
	w, err := s.st.watch(ctx, s.patterns)
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("watching %s: %w", s.st.bucket(), err))
	}
	s.watch = w
	return nil
}

// idleWatch is the watch of nothing.
type idleWatch struct{}

func (idleWatch) changes() <-chan *change { return nil }
func (idleWatch) stop()                   {}

// onChange applies a change of the bucket.
func (s *sharing) onChange(c *change) error {
	g, v, now := s.g, s.v, time.Now()
	if c == nil { // the replay is complete
		s.ready = true
		v.endReplay()
		for _, x := range v.addrs {
			s.dirty[x] = true
		}
		g.f.log.Debug("fleet: bucket read; sharing this upstream's verdicts", "name", g.name, "member", g.f.cfg.Member, "addresses", len(v.addrs))
		return nil
	}
	g.f.stats.received.Add(1)
	parts, err := splitKey(c.key)
	if err != nil || len(parts) != 3 || parts[0] != g.name {
		s.ignore(c.key, errToken)
		return nil
	}
	x, member := v.byStr[parts[1]], parts[2]
	if x == nil {
		return nil // not held here
	}
	if c.removed != "" {
		if v.remove(x, member, c.rev, c.removed, now) {
			s.dirty[x] = true
		}
		return nil
	}
	r, err := decodeRecord(c.value)
	switch {
	case err != nil:
	case r.Member != member || r.Address != x.str || r.Name != g.name:
		err = fmt.Errorf("fleet: value of %q on %s of %s under the key of %q on %s", r.Member, r.Address, r.Name, member, x.str)
	case time.Unix(0, r.Epoch).After(now.Add(maxSkew)):
		err = fmt.Errorf("fleet: value of an instance started at %s, in the future", time.Unix(0, r.Epoch).UTC().Format(time.RFC3339Nano))
	case member == g.f.cfg.Member && r.Epoch > s.epoch:
		g.f.stats.conflicts.Add(1)
		return fmt.Errorf("%w: %q's value on %s was written by an instance started at %s, after this one",
			ErrMemberConflict, member, x.str, time.Unix(0, r.Epoch).UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		s.ignore(c.key, err)
		return nil
	}
	// A value heard as it is written counts from now; one replayed from the
	// bucket from when the server stored it.
	at := now
	if !s.ready && c.at.Before(now) {
		at = c.at
	}
	switch v.hear(x, member, r, c.rev, at, now) {
	case heardAgain:
		return nil
	case heardStale:
		g.f.stats.ignored.Add(1)
		g.f.log.Debug("fleet: value ignored: an older instance's, while a newer one's counts",
			"name", g.name, "address", x.str, "member", member, "epoch", r.Epoch)
		return nil
	case heardFlagged:
		s.reportDisagreement(x, member, r)
	case heardAgrees:
		g.f.log.Info("fleet: a prober agrees with the others again", "name", g.name, "address", x.str, "member", member)
	}
	s.dirty[x] = true
	return nil
}

// reportDisagreement counts and logs a prober whose verdicts on x keep
// disagreeing with the other probers'.
func (s *sharing) reportDisagreement(x *address, member string, r record) {
	g := s.g
	g.f.stats.disagreements.Add(1)
	shared, _ := s.v.verdict(x, time.Now())
	if member == g.f.cfg.Member {
		g.f.stats.outvoted.Add(1)
		g.f.log.Warn("fleet: this member's verdicts keep disagreeing with the other probers': it probably has a broken path to the address; the others' verdict is the fleet's",
			"name", g.name, "address", x.str, "member", member, "its", r.Status, "reason", r.Reason,
			"fleet", shared.String(), "times", disagreeAfter)
		return
	}
	g.f.log.Warn("fleet: a prober's verdicts keep disagreeing with the other probers': it probably has a broken path to the address",
		"name", g.name, "address", x.str, "member", member, "its", r.Status, "reason", r.Reason,
		"fleet", shared.String(), "times", disagreeAfter)
}

// ignore counts and logs a value that cannot be used: at Warn, once per
// key, when a member writes a newer format (it needs a newer vigil here,
// or another Bucket); else at Debug.
func (s *sharing) ignore(key string, why error) {
	s.g.f.stats.ignored.Add(1)
	level := slog.LevelDebug
	if errors.Is(why, errNewerValue) && !s.late[key] {
		level = slog.LevelWarn
		s.late[key] = true
	}
	s.g.f.log.Log(context.Background(), level, "fleet: value ignored", "name", s.g.name, "key", key, "why", why.Error())
}

// writeProbed writes this member's verdicts on the addresses it probes
// whose probes ended since the last call. A verdict is written once the
// member's own probes agree with its checker's active verdict (address.own);
// before, a claim, which holds its place without a vote.
func (s *sharing) writeProbed() {
	g := s.g
	g.inMu.Lock()
	probed := g.probed
	if probed != nil {
		g.probed = make(map[resolver.Key]health.ProbeResult, len(probed))
	}
	g.inMu.Unlock()
	for k, r := range probed {
		x := s.v.addrs[k]
		if x == nil || !x.probe {
			continue
		}
		t, ok := g.chk.Target(r.Address)
		if !ok {
			continue
		}
		interval := s.cfg.Active.Healthy.Interval
		if t.Status == health.Unhealthy {
			interval = s.cfg.Active.Unhealthy.Interval
		}
		agrees := r.Outcome != health.ProbeIgnored && (r.Outcome == health.ProbeSuccess) == (t.Active == health.Healthy)
		x.own = x.own || agrees
		key := verdictKey(g.name, x.str, g.f.cfg.Member)
		if !x.own {
			w := claimWindow(0, interval, s.cfg.Active.Timeout)
			s.w.put(key, record{Address: x.str, Status: statusClaim, Reason: "its own probes do not confirm " + t.Active.String() + " yet",
				Window: w.Milliseconds()}, 2*w)
			continue
		}
		// The probe's reason when it agrees with the verdict; else why the
		// verdict is what it is (a success short of the threshold).
		reason := r.Reason
		if !agrees {
			reason = t.Reason
		}
		w := window(interval)
		s.w.put(key, record{Address: x.str, Status: statusString(t.Active), Reason: reason, Window: w.Milliseconds()}, 2*w)
	}
}

// evaluate decides the addresses that changed or are due, and applies the
// decisions: claims and removals, the probe filter, the fleet's verdicts.
// It returns when a decision may change next.
func (s *sharing) evaluate(now time.Time) time.Time {
	for x, at := range s.due {
		if !now.Before(at) {
			s.dirty[x] = true
		}
	}
	for x := range s.dirty {
		delete(s.dirty, x)
		s.decide(x, now)
	}
	if !s.filterOK {
		sel := make(map[resolver.Key]bool, len(s.selected))
		for k := range s.selected {
			sel[k] = true
		}
		s.g.chk.SetProbeFilter(func(a resolver.Address) bool { return sel[a.Key()] })
		s.filterOK = true
	}
	var next time.Time
	for _, at := range s.due {
		next = earliest(next, at)
	}
	return next
}

// decide decides x and applies the decision.
func (s *sharing) decide(x *address, now time.Time) {
	g, v := s.g, s.v
	d, next := v.step(x, now)
	if next.IsZero() {
		delete(s.due, x)
	} else {
		s.due[x] = next
	}
	key := verdictKey(g.name, x.str, g.f.cfg.Member)
	switch {
	case d.claim:
		w := claimWindow(d.delay, s.cfg.Active.Healthy.Interval, s.cfg.Active.Timeout)
		s.w.put(key, record{Address: x.str, Status: statusClaim, Window: w.Milliseconds(), Delay: d.delay.Milliseconds()}, 2*w)
		g.f.log.Info("fleet: probing an address for the fleet", "name", g.name, "address", x.str,
			"why", d.why, "first probe in", d.delay.String())
	case d.resume:
		g.f.log.Debug("fleet: probing an address for the fleet again", "name", g.name, "address", x.str, "why", d.why)
	case d.yield:
		s.w.remove(key)
		g.f.log.Info("fleet: no longer probing an address for the fleet", "name", g.name, "address", x.str, "why", d.why)
	}
	k := x.addr.Key()
	if sel := x.probe && !now.Before(x.from); sel != s.selected[k] {
		if sel {
			s.selected[k] = true
		} else {
			delete(s.selected, k)
		}
		s.filterOK = false
	}

	shared, from := v.verdict(x, now)
	turned := shared == health.Unhealthy && x.shared != health.Unhealthy
	x.shared = shared
	s.snapshot(x, now, shared, from)
	if from == nil {
		return
	}
	reason := from.reason
	if reason == "" {
		reason = shared.String()
	}
	reason += " (fleet member " + from.member + ")"
	if x.probe {
		// A prober holds its own verdict. With QuorumAny, it takes up the
		// fleet's failure when it appears, so that every member holds the
		// address unhealthy at once; its own probes may make it healthy
		// again, and it takes up that failure no more. With a larger
		// quorum a prober that disagrees is outvoted, not converted.
		x.applied = health.Unknown
		if turned && v.quorum == 1 && from.member != v.self {
			if t, ok := g.chk.Target(x.addr); ok && t.Active == health.Healthy && g.chk.SetActive(x.addr, health.Unhealthy, reason) {
				x.own = false
				g.f.stats.applied.Add(1)
				g.f.log.Debug("fleet: the fleet's failure taken up", "name", g.name, "address", x.str,
					"member", from.member, "reason", from.reason)
			}
		}
		return
	}
	if shared == x.applied {
		return
	}
	if g.chk.SetActive(x.addr, shared, reason) {
		x.applied = shared
		g.f.stats.applied.Add(1)
		g.f.log.Debug("fleet: verdict applied", "name", g.name, "address", x.str,
			"status", shared.String(), "member", from.member, "reason", from.reason)
	}
}
