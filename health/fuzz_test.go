package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// fuzzUniverse is the small set of addresses FuzzReconcile draws target sets
// from: three IPs, two ports, two hostnames (R8: each combination is a
// target of its own).
var fuzzUniverse = func() []resolver.Address {
	var out []resolver.Address
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		for _, port := range []uint16{80, 443} {
			for _, host := range []string{"", "a.test"} {
				out = append(out, resolver.Address{IP: netip.MustParseAddr(ip), Port: port, Hostname: host})
			}
		}
	}
	resolver.Sort(out)
	return out
}()

// fuzzBytes hands out the fuzz input one byte at a time, then zeros.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) next() byte {
	if len(f.b) == 0 {
		return 0
	}
	x := f.b[0]
	f.b = f.b[1:]
	return x
}

func (f *fuzzBytes) empty() bool { return len(f.b) == 0 }

// mState is the model's view of one target's state: two verdicts with
// their own counters. The checker under FuzzReconcile is passive-only, so
// only reports move it, and no ejection lasts long enough to end by itself.
type mState struct {
	active, passive mVerdict
	untilFirst      bool // Initial Unhealthy, no success yet
	ejected         bool
	probation       bool
}

// mVerdict is one verdict: a status and lua-resty-healthcheck's counters.
type mVerdict struct {
	status                   Status
	succ, httpF, tcpF, touts int
}

func (v *mVerdict) count(o outcome) {
	if o == success {
		v.succ++
		v.httpF, v.tcpF, v.touts = 0, 0, 0
		return
	}
	v.succ = 0
	switch o {
	case httpFailure:
		v.httpF++
	case tcpFailure:
		v.tcpF++
	case timeout:
		v.touts++
	}
}

func (v *mVerdict) failing(th thresholds) bool {
	return v.httpF >= th.httpFailures || v.tcpF >= th.tcpFailures || v.touts >= th.timeouts
}

func (s *mState) status() Status {
	if s.active.status == Unhealthy || s.ejected {
		return Unhealthy
	}
	return Healthy
}

// record is a passive report, written down independently of state.go: a
// failure threshold reached ejects, successes reaching theirs end an
// ejection, and after one ends a single failure ejects again until the
// successes threshold is reached. With no probes, a success also ends the
// initial unhealthy status.
func (s *mState) record(o outcome, th thresholds) {
	if o == ignored {
		return
	}
	if o == success && s.untilFirst {
		s.untilFirst = false
		s.active.status = Healthy
	}
	s.passive.count(o)
	switch {
	case s.ejected:
		if o == success && s.passive.succ >= th.successes {
			s.endEjection(th)
		}
	case o != success && (s.probation || s.passive.failing(th)):
		s.ejected, s.probation = true, false
		s.passive.status = Unhealthy
	case o == success && s.probation && s.passive.succ >= th.successes:
		s.probation = false
	}
}

func (s *mState) endEjection(th thresholds) {
	s.ejected = false
	s.passive.status = Healthy
	s.probation = s.passive.succ < th.successes
}

// lowered applies thresholds that went down from old to cur (Update, R5):
// the active verdict has no counters here (nothing probes), the passive one
// is ejected when a lowered failure limit is reached, and an ejection ends
// when a lowered success limit is.
func (s *mState) lowered(old, cur thresholds) {
	hit := func(n, o, c int) bool { return c < o && n >= c }
	p := &s.passive
	switch {
	case !s.ejected && (hit(p.httpF, old.httpFailures, cur.httpFailures) || hit(p.tcpF, old.tcpFailures, cur.tcpFailures) ||
		hit(p.touts, old.timeouts, cur.timeouts)):
		s.ejected, s.probation = true, false
		s.passive.status = Unhealthy
	case s.ejected && hit(p.succ, old.successes, cur.successes):
		s.endEjection(cur)
	}
}

// mEntry is a live or remembered target of the model.
type mEntry struct {
	addr resolver.Address
	st   mState
}

// fuzzModel is what the checker should hold: live targets, and departed ones
// in memory as a list of departure groups, oldest first. Targets removed by
// one reconcile depart together, in no defined order, so when memory
// overflows the checker may keep any of them: the group is then marked
// unsure and the model learns the checker's choice (checking its size and
// contents).
type fuzzModel struct {
	live    map[resolver.Key]mEntry
	groups  [][]mEntry
	unsure  []mEntry // dropped from an unsure group; the checker kept some
	keepN   int      // how many of unsure the checker must still hold
	memCap  int      // < 1: no memory
	initial Status
	active  thresholds
	passive thresholds
	applied bool
	version uint64
	nApply  uint64
	nIgnore uint64
}

func (m *fuzzModel) memLen() int {
	n := 0
	for _, g := range m.groups {
		n += len(g)
	}
	return n + m.keepN
}

// take removes and returns k's remembered state.
func (m *fuzzModel) take(k resolver.Key) (mEntry, bool) {
	for gi, g := range m.groups {
		for i, e := range g {
			if e.addr.Key() == k {
				m.groups[gi] = slices.Delete(g, i, i+1)
				return e, true
			}
		}
	}
	return mEntry{}, false
}

// trim evicts the oldest entries beyond the memory's size.
func (m *fuzzModel) trim() {
	if m.memCap < 1 {
		m.groups = nil
		return
	}
	for m.memLen() > m.memCap {
		g := m.groups[0]
		over := m.memLen() - m.memCap
		if over >= len(g) {
			m.groups = m.groups[1:]
			continue
		}
		m.unsure = append(m.unsure, g...)
		m.keepN += len(g) - over
		m.groups = m.groups[1:]
	}
}

// reconcile makes addrs the live set: returning addresses take their state
// back, new ones start at the initial status, then the others depart.
func (m *fuzzModel) reconcile(addrs []resolver.Address) {
	next := map[resolver.Key]mEntry{}
	for _, a := range addrs {
		k := a.Key()
		if _, dup := next[k]; dup {
			continue
		}
		e, ok := m.live[k]
		switch {
		case ok:
		case m.fromMemory(k, &e):
		default:
			e = mEntry{st: mState{active: mVerdict{status: m.initial}, passive: mVerdict{status: Healthy},
				untilFirst: m.initial == Unhealthy}}
		}
		e.addr = a
		next[k] = e
	}
	var gone []mEntry
	for k, e := range m.live {
		if _, ok := next[k]; !ok {
			gone = append(gone, e)
		}
	}
	m.live = next
	if len(gone) > 0 && m.memCap >= 1 {
		m.groups = append(m.groups, gone)
		m.trim()
	}
}

// fromMemory fills e from memory, sure or unsure (then the caller has
// already asserted what the checker took: see sync).
func (m *fuzzModel) fromMemory(k resolver.Key, e *mEntry) bool {
	if r, ok := m.take(k); ok {
		*e = r
		return true
	}
	return false
}

// sync resolves an unsure memory against the checker: it must hold exactly
// keepN of the unsure entries, with the model's states; they form the
// oldest group.
func (m *fuzzModel) sync(t *testing.T, c *Checker) {
	t.Helper()
	if len(m.unsure) == 0 {
		return
	}
	var kept []mEntry
	for _, e := range m.unsure {
		if r, ok := c.Remembered(e.addr); ok {
			checkSame(t, "remembered (unsure)", e, r)
			kept = append(kept, e)
		}
	}
	if len(kept) != m.keepN {
		t.Fatalf("memory kept %d of %d simultaneously departed targets, want %d", len(kept), len(m.unsure), m.keepN)
	}
	m.unsure, m.keepN = nil, 0
	if len(kept) > 0 {
		m.groups = append([][]mEntry{kept}, m.groups...)
	}
}

func checkSame(t *testing.T, what string, e mEntry, got Target) {
	t.Helper()
	p := e.st.passive
	want := fmt.Sprintf("%v %v active %v passive %v s%d h%d t%d o%d probation %v", e.addr, e.st.status(),
		e.st.active.status, p.status, p.succ, p.httpF, p.tcpF, p.touts, e.st.probation)
	g := got.PassiveCounts
	have := fmt.Sprintf("%v %v active %v passive %v s%d h%d t%d o%d probation %v", got.Address, got.Status,
		got.Active, got.Passive, g.Successes, g.HTTPFailures, g.TCPFailures, g.Timeouts, got.Probation)
	if got.Successes+got.HTTPFailures+got.TCPFailures+got.Timeouts != 0 {
		t.Fatalf("%s: the active counters of a passive-only checker moved: %+v", what, got)
	}
	if want != have {
		t.Fatalf("%s: checker has %s, model %s", what, have, want)
	}
}

// check compares the checker with the model: live targets with their status
// and counters (R1, R3), departed ones in memory and not live (R2), the
// applied version (R4).
func (m *fuzzModel) check(t *testing.T, c *Checker) {
	t.Helper()
	got := c.Targets()
	if len(got) != len(m.live) {
		t.Fatalf("checker has %d targets, model %d: %v", len(got), len(m.live), addrsOf(got))
	}
	var healthy []resolver.Address
	for _, g := range got {
		e, ok := m.live[g.Address.Key()]
		if !ok {
			t.Fatalf("checker has a target the model has not: %v", g.Address)
		}
		checkSame(t, "live", e, g)
		if g.Status == Healthy {
			healthy = append(healthy, g.Address)
		}
	}
	if h := c.Healthy(); !slices.Equal(h, healthy) && len(h)+len(healthy) > 0 {
		t.Fatalf("Healthy() %v, targets say %v", h, healthy)
	}
	m.sync(t, c)
	for _, a := range fuzzUniverse {
		k := a.Key()
		if _, ok := m.live[k]; ok {
			if _, ok := c.Remembered(a); ok {
				t.Fatalf("%v is live and remembered", a)
			}
			continue
		}
		if c.Status(a) != Unknown {
			t.Fatalf("%v is not a target but has status %v", a, c.Status(a))
		}
		r, ok := c.Remembered(a)
		var e mEntry
		found := false
		for _, g := range m.groups {
			for _, x := range g {
				if x.addr.Key() == k {
					e, found = x, true
				}
			}
		}
		if ok != found {
			t.Fatalf("%v: remembered %v, model %v", a, ok, found)
		}
		if ok {
			checkSame(t, "remembered", e, r)
		}
	}
	s := c.Stats()
	if s.Remembered != m.memLen() || s.Version != m.version || s.ChangesApplied != m.nApply || s.ChangesIgnored != m.nIgnore {
		t.Fatalf("stats %+v; model: remembered %d, version %d, applied %d, ignored %d",
			s, m.memLen(), m.version, m.nApply, m.nIgnore)
	}
	if s.ProbesStarted != 0 {
		t.Fatalf("a passive-only checker started %d probes", s.ProbesStarted)
	}
}

// pickSet turns fuzz bytes into a target set: a subset of the universe, a
// weight, and maybe a shuffled order or a duplicate.
func pickSet(in *fuzzBytes, canonical bool) []resolver.Address {
	mask := uint16(in.next()) | uint16(in.next())<<8
	flags := in.next()
	var set []resolver.Address
	for i, a := range fuzzUniverse {
		if mask&(1<<i) != 0 {
			a.Weight = uint16(flags>>4) % 3
			set = append(set, a)
		}
	}
	if canonical || len(set) < 2 {
		return set
	}
	if flags&1 != 0 {
		slices.Reverse(set)
	}
	if flags&2 != 0 {
		d := set[0]
		d.Weight++
		set = append(set, d) // a duplicate: the first one counts
	}
	return set
}

// fuzzThresholds returns thresholds 1..4 from fuzz bytes.
func fuzzThresholds(in *fuzzBytes) (HealthyRules, UnhealthyRules) {
	return HealthyRules{Interval: -1, Successes: 1 + int(in.next()%4)},
		UnhealthyRules{Interval: -1, HTTPFailures: 1 + int(in.next()%4), TCPFailures: 1 + int(in.next()%4), Timeouts: 1 + int(in.next()%4)}
}

// fuzzConfig returns a passive-only configuration from fuzz bytes.
func fuzzConfig(in *fuzzBytes) Config {
	cfg := Config{Name: "fz"}
	cfg.Active.Healthy, cfg.Active.Unhealthy = fuzzThresholds(in)
	cfg.Passive.Healthy, cfg.Passive.Unhealthy = fuzzThresholds(in)
	cfg.Memory = []int{-1, 1, 2, 3, 5, 0}[in.next()%6]
	if in.next()%2 == 1 {
		cfg.Initial = Unhealthy
	}
	return cfg
}

func (m *fuzzModel) configure(cfg Config) {
	n, err := normalize(cfg)
	if err != nil {
		panic(err)
	}
	m.memCap, m.initial = n.Memory, n.Initial
	m.active, m.passive = activeThresholds(n), passiveThresholds(n)
}

// FuzzReconcile drives a passive-only checker (deterministic: no probe ever
// runs) through random target sets from SetTargets and from Changes with
// random versions, passive reports and threshold updates, and compares it
// with a small model after every step: R1 (kept targets keep status and
// counters), R2 (removed ones are gone and remembered), R3 (returning ones
// get their state back while remembered, with the memory's size modelled),
// R4 (Changes not newer than the applied one are ignored).
func FuzzReconcile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0x0f, 0, 2, 0, 4, 0, 0, 0, 0x0f, 0, 0, 2, 1})
	f.Add([]byte("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00" +
		"\x00\x03\x00\x00\x05\x00\x05\x00\x00\x0c\x00\x00\x01\x02\x04\x00\x00\x01\x00\x03\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzBytes{b: data}
		cfg := fuzzConfig(in)
		c, err := NewChecker(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := &fuzzModel{live: map[resolver.Key]mEntry{}}
		m.configure(cfg)
		codes := []int{200, 500, 418, 429, 302, 503}
		for step := 0; step < 200 && !in.empty(); step++ {
			op := in.next()
			what := ""
			switch op % 8 {
			case 0:
				set := pickSet(in, false)
				what = fmt.Sprintf("SetTargets %v", set)
				c.SetTargets(set)
				m.reconcile(set)
			case 1, 2:
				set := pickSet(in, op%8 == 1)
				b := in.next()
				v := max(m.version+uint64(b%6), 2) - 2 // from two behind to three ahead
				name := "fz"
				if b&0x80 != 0 {
					name = "other"
				}
				what = fmt.Sprintf("Change %s v%d %v", name, v, set)
				c.applyChange(resolver.Change{Name: name, Version: v, Addresses: set})
				if name != "fz" || (m.applied && v <= m.version) {
					m.nIgnore++
					break
				}
				m.applied, m.version = true, v
				m.nApply++
				m.reconcile(set)
			case 3, 4:
				a := fuzzUniverse[int(in.next())%len(fuzzUniverse)]
				kind := in.next() % 4
				var o outcome
				switch kind {
				case 0:
					c.ReportSuccess(a)
					o = success
				case 1:
					code := codes[int(in.next())%len(codes)]
					c.ReportHTTPStatus(a, code)
					o = classifyStatus(code, passiveHealthyStatuses, passiveUnhealthyStatuses)
				case 2:
					c.ReportTCPFailure(a)
					o = tcpFailure
				case 3:
					c.ReportTimeout(a)
					o = timeout
				}
				what = fmt.Sprintf("report %v on %v", o, a)
				if e, ok := m.live[a.Key()]; ok {
					e.st.record(o, m.passive)
					m.live[a.Key()] = e
				}
			case 5:
				ncfg := fuzzConfig(in)
				what = fmt.Sprintf("Update %+v", ncfg)
				if err := c.Update(ncfg); err != nil {
					t.Fatalf("Update: %v", err)
				}
				oldA, oldP, oldCap := m.active, m.passive, m.memCap
				m.configure(ncfg)
				_ = oldA // nothing probes: the active counters stay at zero
				for k, e := range m.live {
					e.st.lowered(oldP, m.passive)
					m.live[k] = e
				}
				if m.memCap != oldCap {
					m.resize(t, c, oldCap)
				}
			default:
				// Re-send the current set: nothing may change.
				set := make([]resolver.Address, 0, len(m.live))
				for _, e := range m.live {
					set = append(set, e.addr)
				}
				resolver.Sort(set)
				what = "SetTargets (same set)"
				c.SetTargets(set)
			}
			if t.Failed() {
				return
			}
			m.checkStep(t, c, step, what)
		}
	})
}

// checkStep runs check, naming the step on failure.
func (m *fuzzModel) checkStep(t *testing.T, c *Checker, step int, what string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("after step %d: %s", step, what)
		}
	}()
	m.check(t, c)
}

// resize models Update's new memory size: the most recently departed
// entries stay.
func (m *fuzzModel) resize(t *testing.T, c *Checker, oldCap int) {
	t.Helper()
	if m.memCap < 1 || oldCap < 1 {
		m.groups, m.unsure, m.keepN = nil, nil, 0
		return
	}
	m.trim()
	m.sync(t, c)
}

// A Change that brings a remembered address back while another departs
// takes the returning one's state out of a full memory before the departing
// one goes in (found by FuzzReconcile: the sorted-merge path used to remove
// first, evicting the returning address and resetting it to the initial
// status).
func TestReturningTargetNotEvictedByItsOwnChange(t *testing.T) {
	cfg := passiveOnly("fzr")
	cfg.Memory = 1
	c := newChecker(t, cfg, nil, nil)
	a, b := fuzzUniverse[0], fuzzUniverse[1]
	c.applyChange(resolver.Change{Name: "fzr", Version: 1, Addresses: []resolver.Address{a}})
	for range 2 {
		c.ReportTCPFailure(a)
	}
	c.applyChange(resolver.Change{Name: "fzr", Version: 2, Addresses: []resolver.Address{b}})
	if r, ok := c.Remembered(a); !ok || r.Status != Unhealthy {
		t.Fatalf("a remembered %v: %+v", ok, r)
	}
	c.applyChange(resolver.Change{Name: "fzr", Version: 3, Addresses: []resolver.Address{a}})
	if tg, _ := c.Target(a); tg.Status != Unhealthy || tg.Passive != Unhealthy || tg.EjectedUntil.IsZero() {
		t.Fatalf("a came back as %+v, want ejected", tg)
	}
	if r, ok := c.Remembered(b); !ok || r.Status != Healthy {
		t.Fatalf("b remembered %v: %+v", ok, r)
	}
}

// FuzzConfig feeds arbitrary configurations to NewChecker and Update: they
// never panic; a configuration is either accepted, with every default
// filled in and a probe request that can be written, or refused with a
// *ConfigError matching ErrInvalidConfig, and a refused Update changes
// nothing.
func FuzzConfig(f *testing.F) {
	f.Add("up", 0, "/", "", uint16(0), int64(0), int64(0), int64(0), []byte{}, []byte{}, 0, 0)
	f.Add("up", 1, "/healthz?deep=1", "svc.test:8443", uint16(8443), int64(time.Second), int64(-1), int64(5*time.Second),
		[]byte{0, 200, 1, 46}, []byte{1, 244}, 5, 1)
	f.Add(" ", 3, "health", "a b", uint16(1), int64(-1), int64(0), int64(0), []byte{2, 88}, []byte{0, 200}, -1, 9)
	f.Add("up", 2, "/%zz", "h\x00", uint16(0), int64(1), int64(1), int64(1), []byte{0xff, 0xff}, []byte{}, -3, 2)
	f.Fuzz(func(t *testing.T, name string, typ int, path, host string, port uint16, timeout, hiv, uiv int64,
		okCodes, badCodes []byte, memory, thresholdSeed int) {
		codes := func(b []byte) []int {
			var out []int
			for i := 0; i+1 < len(b) && len(out) < 16; i += 2 {
				out = append(out, int(int16(uint16(b[i])<<8|uint16(b[i+1]))))
			}
			return out
		}
		th := func(shift int) int { return (thresholdSeed>>shift)%7 - 1 } // -1..5
		cfg := Config{
			Name: name,
			Active: Active{
				Type: ProbeType(typ), Path: path, Host: host, Port: port, Timeout: time.Duration(timeout),
				Healthy: HealthyRules{Interval: time.Duration(hiv), Successes: th(0), HTTPStatuses: codes(okCodes)},
				Unhealthy: UnhealthyRules{Interval: time.Duration(uiv), HTTPFailures: th(3), TCPFailures: th(6),
					Timeouts: th(9), HTTPStatuses: codes(badCodes)},
			},
			Passive: Passive{
				Healthy:   HealthyRules{Successes: th(12), HTTPStatuses: codes(badCodes)},
				Unhealthy: UnhealthyRules{HTTPFailures: th(15), TCPFailures: th(18), Timeouts: th(21)},
			},
			Memory:  memory,
			Initial: Status(thresholdSeed >> 24),
		}
		c, err := NewChecker(cfg, nil)
		if err != nil {
			checkConfigError(t, err)
			if c != nil {
				t.Fatal("a checker with an error")
			}
			// The same configuration is refused by Update too, which then
			// changes nothing.
			good, gerr := NewChecker(Config{Name: "up"}, nil)
			if gerr != nil {
				t.Fatal(gerr)
			}
			before := good.Config()
			cfg.Name = "up"
			if uerr := good.Update(cfg); uerr != nil {
				checkConfigError(t, uerr)
				if after := good.Config(); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatalf("a refused Update changed the configuration: %+v", after)
				}
			}
			return
		}
		n := c.Config()
		checkNormalized(t, n)
		// Normalizing is idempotent, and Update accepts what NewChecker did.
		if again, err := normalize(n); err != nil || fmt.Sprint(again) != fmt.Sprint(n) {
			t.Fatalf("normalize(normalized) = %+v, %v", again, err)
		}
		if err := c.Update(cfg); err != nil {
			t.Fatalf("Update refused what NewChecker accepted: %v", err)
		}
		// The probe request this configuration makes can be sent.
		if n.Active.Type != TCP {
			a := resolver.Address{IP: netip.MustParseAddr("127.0.0.1"), Port: 80, Hostname: "t.test"}
			sp := c.spec()
			req, err := probeRequest(context.Background(), sp, a)
			if err != nil {
				t.Fatalf("probe request for %+v: %v", n.Active, err)
			}
			if err := req.Write(io.Discard); err != nil {
				t.Fatalf("probe request for %+v cannot be written: %v", n.Active, err)
			}
		}
		c.SetTargets(fuzzUniverse[:2])
		c.ReportHTTPStatus(fuzzUniverse[0], 503)
		c.ReportTimeout(fuzzUniverse[1])
	})
}

func checkConfigError(t *testing.T, err error) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) || ce.Field == "" ||
		!strings.HasPrefix(err.Error(), "health: invalid config: "+ce.Field+": ") {
		t.Fatalf("error %v (%T), want a *ConfigError", err, err)
	}
}

// checkNormalized checks that every default of an accepted configuration is
// filled in and every value is in range.
func checkNormalized(t *testing.T, n Config) {
	t.Helper()
	a := n.Active
	bad := strings.TrimSpace(n.Name) == "" || a.Type < HTTP || a.Type > TCP || !strings.HasPrefix(a.Path, "/") ||
		a.Timeout <= 0 || a.Healthy.Interval == 0 || a.Unhealthy.Interval == 0 ||
		(n.Initial != Healthy && n.Initial != Unhealthy) || n.Memory == 0
	for _, v := range []int{a.Healthy.Successes, a.Unhealthy.HTTPFailures, a.Unhealthy.TCPFailures, a.Unhealthy.Timeouts,
		n.Passive.Healthy.Successes, n.Passive.Unhealthy.HTTPFailures, n.Passive.Unhealthy.TCPFailures, n.Passive.Unhealthy.Timeouts} {
		bad = bad || v < 1
	}
	for _, l := range [][]int{a.Healthy.HTTPStatuses, a.Unhealthy.HTTPStatuses, n.Passive.Healthy.HTTPStatuses, n.Passive.Unhealthy.HTTPStatuses} {
		bad = bad || len(l) == 0
		for _, code := range l {
			bad = bad || code < 100 || code > 599
		}
	}
	for _, code := range a.Healthy.HTTPStatuses {
		bad = bad || slices.Contains(a.Unhealthy.HTTPStatuses, code)
	}
	for _, code := range n.Passive.Healthy.HTTPStatuses {
		bad = bad || slices.Contains(n.Passive.Unhealthy.HTTPStatuses, code)
	}
	if bad {
		t.Fatalf("accepted configuration out of range: %+v", n)
	}
}
