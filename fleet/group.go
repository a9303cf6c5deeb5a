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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/resolver"
)

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

	snapMu  sync.Mutex
	probing []resolver.Address // what this member probes for the fleet; nil while not sharing
	members []string           // the live members, self included; nil while not sharing
}

func newGroup(f *Fleet, chk *health.Checker, bus *events.Bus, name string) *group {
	return &group{f: f, name: name, chk: chk, bus: bus, wake: make(chan struct{}, 1)}
}

// window returns how long a verdict of a member probing every interval
// counts: the interval and a quarter of it (at least 25ms), room for
// the probes' jitter (±5%) and their durations. A member is taken over
// that long after its last verdict: within a quarter of an interval of the
// write it missed.
func window(interval time.Duration) time.Duration {
	return interval + max(interval/4, 25*time.Millisecond)
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
	g     *group
	v     *view
	w     *writer
	epoch int64
	ready bool                    // both watches have replayed what the buckets held
	byStr map[string]resolver.Key // the view's addresses by canonical string
	set   bool                    // the probe filter has been set
	dirty bool                    // something the decisions depend on changed
	late  map[string]bool         // newer-format writers already logged
}

// share shares the group's verdicts through the buckets until ctx ends
// (nil) or something fails (the error); in both cases the checker probes
// every target again before it returns.
func (g *group) share(ctx context.Context, members, verdicts jetstream.KeyValue) error {
	ctx, cancel := context.WithCancel(ctx)
	cfg := g.chk.Config()
	now := time.Now()
	s := &sharing{
		g:     g,
		v:     newView(g.f.cfg.Member, g.f.cfg.Probers, window(cfg.Active.Healthy.Interval)),
		w:     newWriter(g.f, g.name, members, verdicts),
		epoch: g.f.epoch.Load(),
		byStr: make(map[string]resolver.Key),
		late:  make(map[string]bool),
	}
	var wg sync.WaitGroup
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	wg.Go(func() { werr <- s.w.run(wctx) })
	// finish stops the writer; a registration it might still be writing
	// cannot come after the deletion that leaving makes.
	finish := func() {
		stopWriter()
		wg.Wait()
	}
	defer func() {
		cancel()
		finish()
		g.chk.SetProbeFilter(nil)
		g.inMu.Lock()
		g.probed = nil
		g.inMu.Unlock()
		g.snapMu.Lock()
		g.probing, g.members = nil, nil
		g.snapMu.Unlock()
	}()

	mw, err := members.Watch(ctx, prefix(g.name)+"*")
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("watching %s: %w", members.Bucket(), err))
	}
	defer func() { _ = mw.Stop() }()
	vw, err := verdicts.Watch(ctx, prefix(g.name)+">")
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("watching %s: %w", verdicts.Bucket(), err))
	}
	defer func() { _ = vw.Stop() }()

	g.inMu.Lock()
	g.probed = make(map[resolver.Key]health.ProbeResult)
	g.inMu.Unlock()
	unsubscribe := events.Subscribe(g.bus, health.ProbeTopic(g.name), g.onProbe)
	defer unsubscribe()

	s.setTargets(now)
	s.w.refresh()
	refresh := time.NewTicker(g.f.cfg.TTL / 3)
	defer refresh.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var membersReady, verdictsReady bool
	for {
		changed := g.chk.Changed()
		select {
		case <-ctx.Done():
			if g.f.leaving.Load() || g.detached.Load() {
				finish()
				if err := s.w.leave(); err != nil {
					g.f.log.Warn("fleet: could not leave: the others take over once this member's registration expires",
						"name", g.name, "member", g.f.cfg.Member, "ttl", g.f.cfg.TTL.String(), "error", err)
				}
			}
			return nil
		case err := <-werr:
			return err
		case e, ok := <-mw.Updates():
			if !ok {
				return ctxOr(ctx, errors.New("the members watch ended"))
			}
			if e == nil {
				membersReady = true
			} else if err := s.onMember(e, membersReady); err != nil {
				return err
			}
		case e, ok := <-vw.Updates():
			if !ok {
				return ctxOr(ctx, errors.New("the verdicts watch ended"))
			}
			if e == nil {
				verdictsReady = true
			} else if err := s.onVerdict(e, verdictsReady); err != nil {
				return err
			}
		case <-g.wake:
			s.writeProbed()
		case <-changed:
			s.setTargets(time.Now())
		case <-refresh.C:
			s.w.refresh()
		case <-timer.C:
			s.dirty = true
		}
		if !membersReady || !verdictsReady || !s.dirty && s.ready {
			continue
		}
		s.dirty = false
		if !s.ready {
			s.ready = true
			g.f.log.Debug("fleet: buckets read; sharing this upstream's verdicts",
				"name", g.name, "member", g.f.cfg.Member, "members", len(s.v.liveIDs(time.Now())))
		}
		next := s.evaluate(time.Now())
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// setTargets takes the checker's targets into the view.
func (s *sharing) setTargets(now time.Time) {
	ts := s.g.chk.Targets()
	as := make([]resolver.Address, len(ts))
	clear(s.byStr)
	for i, t := range ts {
		as[i] = t.Address
		s.byStr[rendezvous.AddressString(t.Address.Key())] = t.Address.Key()
	}
	s.v.setTargets(as, now)
	s.dirty = true
}

// age returns how old a value already was when it was heard: zero for
// updates heard as they happen, the server's timestamp's age for those
// replayed when the watch started.
func age(e jetstream.KeyValueEntry, replayed bool, now time.Time) time.Duration {
	if !replayed {
		return 0
	}
	return max(now.Sub(e.Created()), 0)
}

// onMember applies a change of the members bucket.
func (s *sharing) onMember(e jetstream.KeyValueEntry, ready bool) error {
	g, now := s.g, time.Now()
	parts, err := splitKey(e.Key())
	if err != nil || len(parts) != 2 || parts[0] != g.name {
		s.ignore("registration", e.Key(), errToken)
		return nil
	}
	member := parts[1]
	if e.Operation() != jetstream.KeyValuePut {
		if member == g.f.cfg.Member {
			if !g.f.leaving.Load() && !g.detached.Load() {
				s.w.refresh() // deleted by hand: register again
			}
			return nil
		}
		if _, known := s.v.peers[member]; known {
			g.f.log.Info("fleet: member left; its addresses go to the next members", "name", g.name, "member", member)
			s.dirty = true
		}
		s.v.leave(member)
		return nil
	}
	rec, err := decodeMember(e.Value())
	if err == nil && rec.Member != member {
		err = fmt.Errorf("fleet: registration of %q under the key of %q", rec.Member, member)
	}
	if err != nil {
		s.ignore("registration", e.Key(), err)
		return nil
	}
	if member == g.f.cfg.Member {
		switch {
		case rec.Epoch > s.epoch:
			return fmt.Errorf("%w: %q registered by an instance started at %s, after this one",
				ErrMemberConflict, member, time.Unix(0, rec.Epoch).UTC().Format(time.RFC3339Nano))
		case rec.Epoch < s.epoch:
			s.w.refresh() // a previous instance's registration: replace it now
		}
		return nil
	}
	if _, known := s.v.peers[member]; !known && ready {
		g.f.log.Info("fleet: member joined", "name", g.name, "member", member)
	}
	ttl := time.Duration(rec.TTL) * time.Millisecond
	if s.v.register(member, ttl, age(e, !ready, now), now) {
		s.dirty = true
	}
	return nil
}

// onVerdict applies a change of the verdicts bucket.
func (s *sharing) onVerdict(e jetstream.KeyValueEntry, ready bool) error {
	g, now := s.g, time.Now()
	parts, err := splitKey(e.Key())
	if err != nil || len(parts) != 3 || parts[0] != g.name {
		s.ignore("verdict", e.Key(), errToken)
		return nil
	}
	k, held := s.byStr[parts[1]]
	member := parts[2]
	if e.Operation() != jetstream.KeyValuePut {
		if held {
			s.v.forget(k, member)
			s.dirty = true
		}
		return nil
	}
	rec, st, err := decodeVerdict(e.Value())
	if err == nil && (rec.Member != member || rec.Address != parts[1]) {
		err = fmt.Errorf("fleet: verdict of %q on %s under the key of %q on %s", rec.Member, rec.Address, member, parts[1])
	}
	switch {
	case err != nil:
		s.ignore("verdict", e.Key(), err)
		return nil
	case member == g.f.cfg.Member && rec.Epoch > s.epoch:
		return fmt.Errorf("%w: %q's verdict on %s was written by an instance started at %s, after this one",
			ErrMemberConflict, member, rec.Address, time.Unix(0, rec.Epoch).UTC().Format(time.RFC3339Nano))
	case !held:
		return nil // not a target here
	}
	h := heard{
		status: st, reason: rec.Reason, epoch: rec.Epoch, seq: rec.Seq,
		at:     now.Add(-age(e, !ready, now)),
		window: time.Duration(rec.Window) * time.Millisecond,
	}
	if s.v.hear(k, member, h) {
		s.dirty = true
	} else {
		g.f.stats.ignored.Add(1)
		g.f.log.Debug("fleet: verdict ignored: not newer than the one held",
			"name", g.name, "address", rec.Address, "member", member, "epoch", rec.Epoch, "seq", rec.Seq)
	}
	return nil
}

// ignore counts and logs a value that cannot be used: at Warn, once per
// key, when a member writes a newer format (it needs a newer vigil here,
// or another Bucket); else at Debug.
func (s *sharing) ignore(what, key string, why error) {
	s.g.f.stats.ignored.Add(1)
	level := slog.LevelDebug
	if errors.Is(why, errNewerValue) && !s.late[key] {
		level = slog.LevelWarn
		s.late[key] = true
	}
	s.g.f.log.Log(context.Background(), level, "fleet: "+what+" ignored", "name", s.g.name, "key", key, "why", why.Error())
}

// writeProbed writes this member's verdicts on the addresses it probes
// whose probes ended since the last call.
func (s *sharing) writeProbed() {
	g := s.g
	g.inMu.Lock()
	probed := g.probed
	if probed != nil {
		g.probed = make(map[resolver.Key]health.ProbeResult, len(probed))
	}
	g.inMu.Unlock()
	cfg := g.chk.Config()
	for k, r := range probed {
		x := s.v.addrs[k]
		if x == nil || !x.probe {
			continue
		}
		t, ok := g.chk.Target(r.Address)
		if !ok {
			continue
		}
		interval := cfg.Active.Healthy.Interval
		if t.Status == health.Unhealthy {
			interval = cfg.Active.Unhealthy.Interval
		}
		// The probe's reason when it agrees with the verdict; else why the
		// verdict is what it is (a success short of the threshold).
		reason := r.Reason
		if (r.Outcome == health.ProbeSuccess) != (t.Active == health.Healthy) {
			reason = t.Reason
		}
		str := rendezvous.AddressString(k)
		s.w.put(verdictKey(g.name, str, g.f.cfg.Member), verdictRecord{
			Member: g.f.cfg.Member, Name: g.name, Address: str,
			Status: statusString(t.Active), Reason: reason,
			Window: window(interval).Milliseconds(),
		})
	}
}

// evaluate decides every address again and applies the decisions: the
// probe filter when what this member probes changed, the shared verdicts
// on the others. It returns when a decision may change next.
func (s *sharing) evaluate(now time.Time) time.Time {
	g, v := s.g, s.v
	v.rank(now)
	next := v.nextExpiry(now)
	moved := !s.set
	for _, x := range v.addrs {
		d, n := v.decide(x, now)
		next = earliest(next, n)
		if d.probe != x.probe {
			moved = true
			if d.probe && s.set {
				g.f.log.Info("fleet: probing an address for the fleet", "name", g.name, "address", x.addr.String(), "why", d.why)
			}
		}
		x.probe = d.probe
		turned := d.shared == health.Unhealthy && x.shared != health.Unhealthy
		x.shared = d.shared
		reason := d.reason
		if reason == "" {
			reason = d.shared.String()
		}
		reason += " (fleet member " + d.from + ")"
		if d.probe {
			// A prober holds its own verdict, but takes up another
			// prober's failure when it appears: every member then holds
			// the address unhealthy; its own probes may make it healthy
			// again, and it takes up that failure no more.
			x.applied = health.Unknown
			if turned && d.from != v.self {
				if t, ok := g.chk.Target(x.addr); ok && t.Active == health.Healthy && g.chk.SetActive(x.addr, health.Unhealthy, reason) {
					g.f.stats.applied.Add(1)
					g.f.log.Debug("fleet: another prober's failure taken up", "name", g.name, "address", x.addr.String(),
						"member", d.from, "reason", d.reason)
				}
			}
			continue
		}
		if d.shared == health.Unknown || d.shared == x.applied {
			continue
		}
		if g.chk.SetActive(x.addr, d.shared, reason) {
			x.applied = d.shared
			g.f.stats.applied.Add(1)
			g.f.log.Debug("fleet: verdict applied", "name", g.name, "address", x.addr.String(),
				"status", d.shared.String(), "member", d.from, "reason", d.reason)
		}
	}
	if moved || v.stale {
		g.chk.SetProbeFilter(v.filter(now))
		s.set = true
	}
	var probing []resolver.Address
	for _, x := range v.addrs {
		if x.probe {
			probing = append(probing, x.addr)
		}
	}
	resolver.Sort(probing)
	g.snapMu.Lock()
	g.probing, g.members = probing, slices.Clone(v.live)
	g.snapMu.Unlock()
	return next
}

// snapshot returns what the member probes for the fleet and the live
// members; nil while not sharing.
func (g *group) snapshot() ([]resolver.Address, []string) {
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	return slices.Clone(g.probing), slices.Clone(g.members)
}
