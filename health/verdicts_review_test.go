package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// scripted is a Prober whose outcome is set per target; it counts calls and
// the probes inside Probe at once, per target and in all.
type scripted struct {
	delay time.Duration

	mu       sync.Mutex
	out      map[resolver.Key]ProbeOutcome // absent: success
	calls    map[resolver.Key]int
	inside   map[resolver.Key]int
	total    int
	peak     int
	peakAddr int // the most probes of one target inside Probe at once
}

func newScripted() *scripted {
	return &scripted{out: map[resolver.Key]ProbeOutcome{}, calls: map[resolver.Key]int{}, inside: map[resolver.Key]int{}}
}

func (s *scripted) set(a resolver.Address, o ProbeOutcome) {
	s.mu.Lock()
	s.out[a.Key()] = o
	s.mu.Unlock()
}

func (s *scripted) callsOf(a resolver.Address) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[a.Key()]
}

func (s *scripted) Probe(ctx context.Context, a resolver.Address) (ProbeOutcome, string) {
	k := a.Key()
	s.mu.Lock()
	s.calls[k]++
	s.inside[k]++
	s.total++
	s.peak = max(s.peak, s.total)
	s.peakAddr = max(s.peakAddr, s.inside[k])
	o, ok := s.out[k]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inside[k]--
		s.total--
		s.mu.Unlock()
	}()
	if !ok {
		o = ProbeSuccess
	}
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ProbeTimeout, "canceled"
		}
	}
	return o, "scripted " + o.String()
}

// loopback returns n addresses 127.77.<block>.1.. on port 80 for hostname.
func loopback(block, n int, hostname string) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range n {
		out[i] = resolver.Address{IP: mustIP(fmt.Sprintf("127.77.%d.%d", block, i+1)), Port: 80, Hostname: hostname}
	}
	return out
}

// internals is what a target's scheduling looks like from inside.
type internals struct {
	ptr     *target
	next    time.Time
	queued  bool
	ejected bool // in the ejection queue
}

func inside(c *Checker, a resolver.Address) internals {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.targets[a.Key()]
	if t == nil {
		return internals{}
	}
	return internals{ptr: t, next: t.next, queued: t.index >= 0, ejected: t.ejIndex >= 0}
}

// mustTarget returns a's snapshot, failing the test when a is no target.
func mustTarget(t *testing.T, c *Checker, a resolver.Address) Target {
	t.Helper()
	tg, ok := c.Target(a)
	if !ok {
		t.Fatalf("%v is not a target", a)
	}
	return tg
}

// R1 under the verdict model: a target kept across Changes (another target
// added, then removed, then a Weight changed) keeps both verdicts, both
// sets of counters, its ejection deadline, its reason and its probe
// schedule, and is not probed again.
func TestReviewKeptTargetKeepsEverything(t *testing.T) {
	pr := newScripted()
	cfg := fast("review-keep", time.Hour)
	cfg.Active.Prober = pr
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	cfg.Passive.Unhealthy.HTTPFailures = 4
	bus := newBus(t)
	c := newChecker(t, cfg, bus, nil)
	as := loopback(10, 3, "keep.test")
	a, b, extra := as[0], as[1], as[2]
	pr.set(a, ProbeHTTPFailure)
	start(t, c)
	publish(t, bus, c, 1, a, b)
	testutil.Eventually(t, 2*time.Second, "both first probes", func() bool { return c.Stats().ProbesCompleted == 2 })

	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a) // passive threshold 2: a is ejected for an hour
	c.ReportHTTPStatus(b, 500)
	c.ReportHTTPStatus(b, 503) // b: two of four passive HTTP failures
	before := map[resolver.Key]Target{a.Key(): mustTarget(t, c, a), b.Key(): mustTarget(t, c, b)}
	in := map[resolver.Key]internals{a.Key(): inside(c, a), b.Key(): inside(c, b)}
	if ta := before[a.Key()]; ta.Active != Healthy || ta.Passive != Unhealthy || ta.HTTPFailures != 1 ||
		ta.PassiveCounts.TCPFailures != 2 || ta.EjectedUntil.IsZero() {
		t.Fatalf("setup: a is %+v", ta)
	}
	if tb := before[b.Key()]; tb.PassiveCounts.HTTPFailures != 2 || tb.Successes != 1 {
		t.Fatalf("setup: b is %+v", tb)
	}
	started := c.Stats().ProbesStarted

	bw := b
	bw.Weight = 7
	steps := []struct {
		name  string
		addrs []resolver.Address
	}{
		{"another target added", []resolver.Address{a, b, extra}},
		{"it is removed", []resolver.Address{a, b}},
		{"a weight changes", []resolver.Address{a, bw}},
		{"the same set again", []resolver.Address{bw, a}},
	}
	for i, st := range steps {
		publish(t, bus, c, uint64(2+i), st.addrs...)
		for _, x := range []resolver.Address{a, b} {
			got := mustTarget(t, c, x)
			want := before[x.Key()]
			want.Address = got.Address // Weight follows the set
			if got != want {
				t.Fatalf("after %s, %v changed:\n got %+v\nwant %+v", st.name, x, got, want)
			}
			if gi := inside(c, x); gi != in[x.Key()] {
				t.Fatalf("after %s, %v's schedule changed: %+v, was %+v", st.name, x, gi, in[x.Key()])
			}
		}
	}
	// Only extra was probed meanwhile.
	testutil.Eventually(t, 2*time.Second, "extra's probe", func() bool { return pr.callsOf(extra) == 1 })
	if n := c.Stats().ProbesStarted - started; n != 1 {
		t.Fatalf("%d probes started across the changes, want 1 (the new target)", n)
	}
	if pr.callsOf(a) != 1 || pr.callsOf(b) != 1 {
		t.Fatalf("kept targets probed again: a %d, b %d", pr.callsOf(a), pr.callsOf(b))
	}
	// An older Change is ignored (R4): nothing moves.
	publish(t, bus, c, 1, extra)
	if _, ok := c.Target(a); !ok || c.Stats().Targets != 2 {
		t.Fatalf("an old Change was applied: %+v", c.Targets())
	}
}

// R2: once SetTargets returns, no probe of a target it removed starts,
// under churn (200 random target sets of 40 addresses, probing every few
// milliseconds); every start is seen by the probe hook, which runs under
// the checker's lock.
func TestReviewNoProbeStartsAfterRemoval(t *testing.T) {
	all := loopback(11, 40, "churn.test")
	var (
		mu         sync.Mutex
		gone       = map[resolver.Key]bool{}
		violations []string
		starts     atomic.Int64
	)
	hook := func(tg *target) {
		starts.Add(1)
		mu.Lock()
		if gone[tg.addr.Key()] {
			violations = append(violations, tg.addr.String())
		}
		mu.Unlock()
	}
	pr := newScripted()
	pr.delay = time.Millisecond
	cfg := fast("review-gone", 2*time.Millisecond)
	cfg.Active.Prober = pr
	c := newChecker(t, cfg, nil, hook, WithMaxProbes(8))
	start(t, c)
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		var set []resolver.Address
		in := map[resolver.Key]bool{}
		for _, a := range all {
			if rng.IntN(2) == 0 {
				set = append(set, a)
				in[a.Key()] = true
			}
		}
		mu.Lock()
		for k := range in {
			delete(gone, k) // coming back: its probes may start again
		}
		mu.Unlock()
		c.SetTargets(set)
		mu.Lock()
		for _, a := range all {
			if !in[a.Key()] {
				gone[a.Key()] = true
			}
		}
		mu.Unlock()
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
	}
	c.SetTargets(nil)
	mu.Lock()
	for _, a := range all {
		gone[a.Key()] = true
	}
	mu.Unlock()
	time.Sleep(20 * time.Millisecond) // a window in which a stray probe would start; its absence is asserted
	mu.Lock()
	bad := append([]string(nil), violations...)
	mu.Unlock()
	t.Logf("%d probes started", starts.Load())
	if starts.Load() < 100 {
		t.Fatalf("only %d probes started: the churn did not exercise probing", starts.Load())
	}
	if len(bad) > 0 {
		t.Fatalf("%d probes started after their target's removal, e.g. %v", len(bad), bad[0])
	}
	if n := c.Stats().Targets; n != 0 {
		t.Fatalf("%d targets after the empty set", n)
	}
}

// R3 under the verdict model: a target that returns gets both verdicts,
// both sets of counters and its ejection back before its first probe runs,
// also when that probe would change them.
func TestReviewReturningTargetGetsVerdictsBeforeProbe(t *testing.T) {
	pr := newScripted()
	as := loopback(12, 2, "back.test")
	a, b := as[0], as[1]
	var (
		mu       sync.Mutex
		watching bool
		first    *Target
	)
	hook := func(tg *target) {
		mu.Lock()
		defer mu.Unlock()
		if watching && first == nil && tg.addr.Key() == a.Key() {
			s := tg.snapshot()
			first = &s
		}
	}
	cfg := fast("review-back", 30*time.Millisecond)
	cfg.Active.Prober = pr
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	c := newChecker(t, cfg, nil, hook)
	pr.set(a, ProbeHTTPFailure)
	c.SetTargets(as)
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "a to be actively unhealthy", func() bool {
		tg, _ := c.Target(a)
		return tg.Active == Unhealthy
	})
	c.ReportTimeout(a)
	for range 7 {
		c.ReportTimeout(a) // passive timeouts: 7 eject
	}
	c.SetTargets([]resolver.Address{b})
	mem, ok := c.Remembered(a)
	if !ok || mem.Active != Unhealthy || mem.Passive != Unhealthy || mem.PassiveCounts.Timeouts != 8 || mem.EjectedUntil.IsZero() {
		t.Fatalf("remembered %+v, %v", mem, ok)
	}
	pr.set(a, ProbeSuccess) // the first probe after its return would count a success
	mu.Lock()
	watching = true
	mu.Unlock()
	c.SetTargets(as)
	testutil.Eventually(t, 2*time.Second, "a's first probe after its return", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	})
	mu.Lock()
	got := *first
	mu.Unlock()
	got.LastProbe = mem.LastProbe // the hook runs after the probe's start was recorded
	if got != mem {
		t.Fatalf("at its first probe after returning a was\n %+v\nremembered\n %+v", got, mem)
	}
}

// Update never resets a verdict: with new probe settings, new intervals,
// thresholds raised, new ejection durations, outlier detection turned on
// and a new memory size, every target keeps its status, both verdicts,
// every counter, its ejection and probation, and remembered targets keep
// theirs.
func TestReviewUpdateNeverResetsVerdicts(t *testing.T) {
	cfg := fast("review-update", time.Hour)
	cfg.Passive.Ejection = Ejection{Base: 100 * time.Millisecond, Max: time.Second}
	c := newChecker(t, cfg, nil, nil)
	as := loopback(13, 6, "update.test")
	c.SetTargets(as)
	// No Run: nothing but these calls moves a verdict.
	c.SetActive(as[0], Unhealthy, "elsewhere")
	c.ReportTCPFailure(as[1])
	c.ReportTCPFailure(as[1]) // ejected
	c.ReportHTTPStatus(as[2], 500)
	c.ReportTimeout(as[2])
	c.ReportRetryAfter(as[3], 503, time.Minute)
	for range 3 {
		c.ReportSuccess(as[4])
	}
	c.SetTargets(as[:5]) // as[5] leaves with its initial state ...
	c.ReportHTTPStatus(as[0], 429)
	before := c.Targets()
	gone, _ := c.Remembered(as[5])

	steps := []func(*Config){
		func(u *Config) { u.Active.Path = "/other"; u.Active.Type = TCP; u.Active.Port = 81 },
		func(u *Config) { u.Active.Healthy.Interval = time.Minute; u.Active.Unhealthy.Interval = -1 },
		func(u *Config) {
			u.Active.Unhealthy.HTTPFailures = 50
			u.Passive.Unhealthy.TCPFailures = 50
			u.Passive.Healthy.Successes = 50
			u.Active.Healthy.Successes = 50
		},
		func(u *Config) { u.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour} },
		func(u *Config) {
			u.Passive.Outlier = Outlier{Interval: time.Hour, MaxEjectionPercent: 100,
				FailurePercentage: &FailurePercentage{MinimumHosts: 100}}
		},
		func(u *Config) { u.Memory = 3; u.Initial = Unhealthy },
		func(u *Config) { u.Active.Headers = http.Header{"X-Probe": {"1"}}; u.Active.ExpectBody = "ok" },
	}
	for i, step := range steps {
		u := c.Config()
		step(&u)
		if err := c.Update(u); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		after := c.Targets()
		if len(after) != len(before) {
			t.Fatalf("step %d: %d targets, was %d", i, len(after), len(before))
		}
		for j := range after {
			if after[j] != before[j] {
				t.Fatalf("step %d changed %v:\n got %+v\nwant %+v", i, after[j].Address, after[j], before[j])
			}
		}
		if r, ok := c.Remembered(as[5]); !ok || r != gone {
			t.Fatalf("step %d: remembered %v is %+v (%v), was %+v", i, as[5], r, ok, gone)
		}
	}
	// The remembered state of as[5] comes back, not the new Initial.
	c.SetTargets(as)
	if tg := mustTarget(t, c, as[5]); tg.Status != Healthy || tg.Active != Healthy {
		t.Fatalf("a remembered target came back as %+v", tg)
	}
}

// R8: two hostnames on one IP:port are two targets, probed with their own
// Host header, each with its own verdicts: one name failing its probes or
// its traffic leaves the other untouched.
func TestReviewTwoNamesOneAddress(t *testing.T) {
	b := backends(t, "127.77.14.1", 1, nil)[0]
	b.SetHostStatus("bad.test", 500)
	good, bad := b.Address("good.test"), b.Address("bad.test")
	cfg := fast("review-names", 20*time.Millisecond)
	c := newChecker(t, cfg, nil, nil)
	c.SetTargets([]resolver.Address{good, bad})
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "bad.test to fail its probes", func() bool { return c.Status(bad) == Unhealthy })
	for range 10 {
		c.ReportTimeout(good)
	}
	before, _ := c.Target(bad)
	for range 10 {
		c.ReportSuccess(bad)
	}
	g, _ := c.Target(good)
	if g.Active != Healthy || g.Passive != Unhealthy || g.PassiveCounts.Timeouts != 10 {
		t.Fatalf("good.test %+v", g)
	}
	bt, _ := c.Target(bad)
	if bt.Active != Unhealthy || bt.Passive != Healthy || bt.PassiveCounts.Successes != before.PassiveCounts.Successes+10 ||
		bt.PassiveCounts.Timeouts != 0 {
		t.Fatalf("bad.test %+v", bt)
	}
	hosts := b.Hosts()
	if hosts["good.test"] == 0 || hosts["bad.test"] == 0 || len(hosts) != 2 {
		t.Fatalf("Host headers %v", hosts)
	}
}

// Passive successes from several goroutines never clear an active failure
// reached by real probes of a real backend: from the moment its health
// endpoint fails until it is fixed, the target never reads Healthy and no
// StatusChange takes it there; once fixed, probes alone heal it.
func TestReviewPassiveSuccessesNeverClearActiveFailure(t *testing.T) {
	bs := backends(t, "127.77.15.1", 2, nil)
	sick := bs[0]
	cfg := fast("review-mask", 15*time.Millisecond)
	cfg.Active.Path = "/healthz"
	cfg.Passive.Healthy.Successes = 1
	bus := newBus(t)
	var (
		mu     sync.Mutex
		failed bool // the active verdict turned unhealthy; not healed yet
		bad    []StatusChange
	)
	a := sick.Address("mask.test")
	defer events.Subscribe(bus, StatusTopic("review-mask"), func(e StatusChange) {
		mu.Lock()
		defer mu.Unlock()
		if e.Address.Key() != a.Key() {
			return
		}
		if e.Active == Unhealthy {
			failed = true
		}
		if failed && e.To == Healthy {
			bad = append(bad, e)
		}
	})()
	c := newChecker(t, cfg, bus, nil)
	c.SetTargets([]resolver.Address{a, bs[1].Address("mask.test")})
	start(t, c)
	sick.SetPathStatus("/healthz", 500)

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var traffic sync.WaitGroup
	for g := range 4 {
		traffic.Go(func() {
			for i := 0; i < 200000 && ctx.Err() == nil; i++ {
				switch g {
				case 0:
					c.ReportHTTPStatus(a, 200)
				default:
					c.ReportSuccess(a)
				}
				if i%64 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}
	testutil.Eventually(t, 3*time.Second, "the failing health endpoint to be seen", func() bool {
		tg, _ := c.Target(a)
		return tg.Active == Unhealthy
	})
	completed := c.Stats().ProbesCompleted
	for ctx.Err() == nil {
		if tg, _ := c.Target(a); tg.Status != Unhealthy || tg.Active != Unhealthy {
			t.Fatalf("succeeding traffic cleared a failing probe: %+v", tg)
		}
		time.Sleep(time.Millisecond)
	}
	traffic.Wait()
	if n := c.Stats().ProbesCompleted - completed; n < 10 {
		t.Fatalf("only %d probes while the traffic ran", n)
	}
	tg, _ := c.Target(a)
	if tg.PassiveCounts.Successes < 1000 {
		t.Fatalf("only %d passive successes were counted", tg.PassiveCounts.Successes)
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Fatalf("a StatusChange healed the target while its probes failed: %+v", bad[0])
	}
	mu.Unlock()
	sick.SetPathStatus("/healthz", 0)
	testutil.Eventually(t, 3*time.Second, "probes to heal it once fixed", func() bool { return c.Status(a) == Healthy })
}

// Probes never reset the passive counters: passing and failing probes
// leave every passive counter, the passive verdict and probation alone.
func TestReviewProbesNeverResetPassiveCounters(t *testing.T) {
	pr := newScripted()
	cfg := fast("review-counters", 5*time.Millisecond)
	cfg.Active.Prober = pr
	cfg.Passive.Unhealthy = UnhealthyRules{HTTPFailures: 100, TCPFailures: 100, Timeouts: 100}
	c := newChecker(t, cfg, nil, nil)
	as := loopback(16, 2, "counters.test")
	pr.set(as[1], ProbeTCPFailure)
	c.SetTargets(as)
	c.ReportHTTPStatus(as[0], 500)
	c.ReportTCPFailure(as[0])
	c.ReportTimeout(as[0])
	c.ReportTimeout(as[1])
	c.ReportHTTPStatus(as[1], 503)
	want := []Counters{mustTarget(t, c, as[0]).PassiveCounts, mustTarget(t, c, as[1]).PassiveCounts}
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "many probes of both", func() bool { return c.Stats().ProbesCompleted >= 40 })
	for i, a := range as {
		if got := mustTarget(t, c, a); got.PassiveCounts != want[i] || got.Passive != Healthy {
			t.Fatalf("%v after probes: passive %v %+v, want %+v", a, got.Passive, got.PassiveCounts, want[i])
		}
	}
	if got := mustTarget(t, c, as[1]); got.Active != Unhealthy {
		t.Fatalf("failing probes left %+v", got)
	}
}

// An ejection ends at its deadline with Run running and nothing else
// happening (no probes, no reports): not before it, and its end is a
// StatusChange "ejection over". A second one, on probation, lasts twice as
// long; successes reaching their threshold end probation, after which one
// failure no longer ejects.
func TestReviewEjectionDeadlineAndProbation(t *testing.T) {
	const base = 200 * time.Millisecond
	cfg := passiveOnly("review-deadline")
	cfg.Passive.Ejection = Ejection{Base: base, Max: 10 * base}
	bus := newBus(t)
	type seen struct {
		e  StatusChange
		at time.Time
	}
	var (
		mu  sync.Mutex
		evs []seen
	)
	defer events.Subscribe(bus, StatusTopic("review-deadline"), func(e StatusChange) {
		mu.Lock()
		evs = append(evs, seen{e, time.Now()})
		mu.Unlock()
	})()
	c := newChecker(t, cfg, bus, nil)
	a := loopback(17, 1, "deadline.test")[0]
	c.SetTargets([]resolver.Address{a})
	start(t, c)

	ended := func(n int) seen {
		t.Helper()
		var last seen
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("ejection %d to end", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			k := 0
			for _, s := range evs {
				if s.e.Reason == "ejection over" {
					k++
					last = s
				}
			}
			return k == n
		})
		return last
	}

	began := time.Now()
	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a)
	first := mustTarget(t, c, a)
	if first.Passive != Unhealthy || first.Ejections != 1 {
		t.Fatalf("after two TCP failures: %+v", first)
	}
	if d := first.EjectedUntil.Sub(began); d > base+5*time.Millisecond || d < base*9/10 {
		t.Fatalf("first ejection lasts %v, want %v less up to 10%%", d, base)
	}
	over := ended(1)
	if over.at.Before(first.EjectedUntil) {
		t.Fatalf("the ejection ended at %v, %v before its deadline", over.at, first.EjectedUntil.Sub(over.at))
	}
	if over.e.Passive != Healthy || over.e.To != Healthy {
		t.Fatalf("end of ejection %+v", over.e)
	}
	tg := mustTarget(t, c, a)
	if !tg.Probation || tg.Passive != Healthy {
		t.Fatalf("after the ejection: %+v, want probation", tg)
	}

	again := time.Now()
	c.ReportTCPFailure(a) // one failure on probation ejects again
	second := mustTarget(t, c, a)
	if second.Passive != Unhealthy || second.Ejections != 2 {
		t.Fatalf("one failure on probation: %+v", second)
	}
	if d := second.EjectedUntil.Sub(again); d > 2*base+5*time.Millisecond || d < 2*base*9/10 {
		t.Fatalf("second ejection lasts %v, want %v less up to 10%%", d, 2*base)
	}
	if over := ended(2); over.at.Before(second.EjectedUntil) {
		t.Fatalf("the second ejection ended %v before its deadline", second.EjectedUntil.Sub(over.at))
	}
	for range 5 {
		c.ReportSuccess(a) // the passive success threshold ends probation
	}
	if tg := mustTarget(t, c, a); tg.Probation {
		t.Fatalf("probation after 5 successes: %+v", tg)
	}
	c.ReportTCPFailure(a)
	if tg := mustTarget(t, c, a); tg.Passive != Healthy {
		t.Fatalf("one failure after probation ejected: %+v", tg)
	}
}

// A Retry-After ejection is capped at Ejection.Max, and neither passing
// probes nor passive successes end it: only its deadline does.
func TestReviewRetryAfterCappedNotEndedByProbes(t *testing.T) {
	const maxEj = 400 * time.Millisecond
	pr := newScripted()
	cfg := fast("review-ra", 10*time.Millisecond)
	cfg.Active.Prober = pr
	cfg.Passive.Ejection = Ejection{Base: 50 * time.Millisecond, Max: maxEj}
	cfg.Passive.Healthy.Successes = 1
	c := newChecker(t, cfg, nil, nil)
	a := loopback(18, 1, "ra.test")[0]
	c.SetTargets([]resolver.Address{a})
	start(t, c)
	testutil.Eventually(t, 2*time.Second, "a first probe", func() bool { return c.Stats().ProbesCompleted > 0 })
	at := time.Now()
	c.ReportRetryAfter(a, 503, time.Hour)
	tg := mustTarget(t, c, a)
	if tg.Passive != Unhealthy || tg.EjectedUntil.After(at.Add(maxEj+50*time.Millisecond)) || tg.EjectedUntil.Before(at.Add(maxEj)) {
		t.Fatalf("Retry-After of an hour: %+v; want ejected until about %v from now", tg, maxEj)
	}
	probes := c.Stats().ProbesCompleted
	for time.Now().Before(tg.EjectedUntil.Add(-50 * time.Millisecond)) {
		c.ReportSuccess(a)
		if got := mustTarget(t, c, a); got.Passive != Unhealthy {
			t.Fatalf("the Retry-After ejection ended %v early: %+v", time.Until(tg.EjectedUntil), got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := c.Stats().ProbesCompleted - probes; n < 5 {
		t.Fatalf("only %d probes during the ejection", n)
	}
	testutil.Eventually(t, 3*time.Second, "the deadline to end it", func() bool { return c.Status(a) == Healthy })
	if time.Now().Before(tg.EjectedUntil) {
		t.Fatalf("ended before its deadline")
	}
}

// ejectedInside counts, under the checker's lock, the live targets whose
// passive verdict is an ejection and checks the ejection queue against
// them: every queued target is live and ejected, and every ejected live
// target is queued.
func ejectedInside(c *Checker) (ejected int, problem string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range c.ejections.ts {
		switch {
		case c.targets[t.addr.Key()] != t:
			return 0, "the ejection queue holds " + t.addr.String() + ", which is not a live target"
		case t.ejIndex != i:
			return 0, "ejIndex out of step for " + t.addr.String()
		case !t.state.passive.ejected():
			return 0, "the ejection queue holds " + t.addr.String() + ", which is not ejected"
		}
	}
	for _, t := range c.targets {
		if t.state.passive.ejected() {
			ejected++
			if t.ejIndex < 0 {
				return 0, t.addr.String() + " is ejected but not in the ejection queue"
			}
		}
	}
	if ejected != c.ejections.Len() {
		return 0, fmt.Sprintf("%d ejected targets, %d in the queue", ejected, c.ejections.Len())
	}
	return ejected, ""
}

// MaxEjectionPercent is never exceeded while every target fails at once,
// reported from many goroutines, with threshold ejections, Retry-After
// ejections and outlier detection all ejecting: at every moment at most
// max(1, n·pct/100) live targets are ejected, and Stats().Ejected agrees.
func TestReviewMaxEjectionPercentUnderLoad(t *testing.T) {
	const n, pct = 20, 20
	limit := max(1, n*pct/100)
	cfg := passiveOnly("review-cap")
	cfg.Passive.Ejection = Ejection{Base: 40 * time.Millisecond, Max: 200 * time.Millisecond}
	cfg.Passive.Outlier = Outlier{Interval: 20 * time.Millisecond, MaxEjectionPercent: pct,
		SuccessRate:       &SuccessRate{MinimumHosts: 2, RequestVolume: 2, StdevFactor: 0.1},
		FailurePercentage: &FailurePercentage{Threshold: 10, MinimumHosts: 1, RequestVolume: 2}}
	bus := newBus(t)
	var kinds sync.Map // reason kind -> true
	defer events.Subscribe(bus, StatusTopic("review-cap"), func(e StatusChange) {
		if e.Passive != Unhealthy {
			return
		}
		switch {
		case strings.HasPrefix(e.Reason, "outlier:"):
			kinds.Store("outlier", true)
		case strings.Contains(e.Reason, "Retry-After"):
			kinds.Store("retry-after", true)
		default:
			kinds.Store("threshold", true)
		}
	})()
	c := newChecker(t, cfg, bus, nil)
	as := loopback(19, n, "cap.test")
	c.SetTargets(as)
	start(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { // now and then a Retry-After, which also extends an ejection under way
		rng := rand.New(rand.NewPCG(99, 7))
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			c.ReportRetryAfter(as[rng.IntN(n)], 503, time.Duration(10+rng.IntN(40))*time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
	})
	for g := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				a := as[rng.IntN(n)]
				switch rng.IntN(6) {
				case 0:
					c.ReportTCPFailure(a)
				case 1:
					c.ReportTimeout(a)
				case 2:
					c.ReportHTTPStatus(a, 500)
				case 3:
					c.ReportHTTPStatus(a, 503)
				case 4:
					c.ReportSuccess(a)
				default:
					c.ReportHTTPStatus(a, 429)
				}
				if i%32 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			}
		})
	}
	peak, checks := 0, 0
	for ctx.Err() == nil {
		got, problem := ejectedInside(c)
		if problem != "" {
			cancel()
			wg.Wait()
			t.Fatal(problem)
		}
		if got > limit {
			cancel()
			wg.Wait()
			t.Fatalf("%d of %d targets ejected at once, MaxEjectionPercent %d allows %d", got, n, pct, limit)
		}
		if s := c.Stats(); s.Ejected > limit {
			cancel()
			wg.Wait()
			t.Fatalf("Stats().Ejected = %d, limit %d", s.Ejected, limit)
		}
		peak = max(peak, got)
		checks++
		time.Sleep(200 * time.Microsecond)
	}
	wg.Wait()
	s := c.Stats()
	t.Logf("%d checks, peak %d ejected; %d ejections, %d outlier evaluations", checks, peak, s.Ejections, s.OutlierEvaluations)
	if peak != limit || s.OutlierEvaluations == 0 || s.Ejections < 3*uint64(limit) {
		t.Fatalf("the load never reached the cap (peak %d of %d), outlier detection never ran (%d) or ejections did not come and go (%d)",
			peak, limit, s.OutlierEvaluations, s.Ejections)
	}
	for _, k := range []string{"outlier", "retry-after", "threshold"} {
		if _, ok := kinds.Load(k); !ok {
			t.Errorf("no %s ejection happened", k)
		}
	}
}

// A target that returns from memory with its ejection is one more ejected
// target: the cap holds for it too. With 10 targets and MaxEjectionPercent
// 10, one target may be ejected at a time; ejecting one, letting it leave,
// ejecting another and letting the first come back must not leave two
// ejected.
func TestReviewMaxEjectionPercentReturningTarget(t *testing.T) {
	cfg := passiveOnly("review-cap-back")
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	cfg.Passive.Outlier = Outlier{Interval: time.Hour, MaxEjectionPercent: 10}
	c := newChecker(t, cfg, nil, nil)
	as := loopback(20, 10, "capback.test")
	c.SetTargets(as)
	c.ReportTCPFailure(as[0])
	c.ReportTCPFailure(as[0]) // the one ejection 10% allows
	c.ReportTCPFailure(as[1])
	c.ReportTCPFailure(as[1])
	if n := c.Stats().Ejected; n != 1 {
		t.Fatalf("%d ejected, want 1 (the cap)", n)
	}
	c.SetTargets(as[1:]) // as[0] leaves, ejected, into memory
	c.ReportTCPFailure(as[1])
	if n := c.Stats().Ejected; n != 1 {
		t.Fatalf("%d ejected after as[0] left, want 1 (as[1])", n)
	}
	c.SetTargets(as) // as[0] returns with its ejection
	got, problem := ejectedInside(c)
	if problem != "" {
		t.Fatal(problem)
	}
	if got > 1 {
		t.Fatalf("%d of 10 targets ejected at once with MaxEjectionPercent 10 (after an ejected target returned)", got)
	}
}

// The ejection queue never holds a removed target and Stats().Ejected is
// always the number of live targets whose passive verdict is an ejection,
// while reports, target churn, Update and Run restarts race.
func TestReviewEjectionQueueUnderChurn(t *testing.T) {
	cfg := passiveOnly("review-ejq")
	cfg.Passive.Ejection = Ejection{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	cfg.Passive.Unhealthy.TCPFailures = 1
	cfg.Memory = 16
	c := newChecker(t, cfg, nil, nil)
	all := loopback(21, 30, "ejq.test")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { // Run restarts
		for i := 0; i < 100 && ctx.Err() == nil; i++ {
			rc, stop := context.WithTimeout(ctx, time.Duration(5+i%20)*time.Millisecond)
			if err := c.Run(rc); err != nil {
				t.Errorf("Run: %v", err)
			}
			stop()
		}
	})
	wg.Go(func() { // churn
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			var set []resolver.Address
			for _, a := range all {
				if rng.IntN(3) > 0 {
					set = append(set, a)
				}
			}
			c.SetTargets(set)
			time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
		}
	})
	wg.Go(func() { // configuration changes
		for i := 0; i < 200 && ctx.Err() == nil; i++ {
			u := c.Config()
			u.Passive.Ejection.Base = time.Duration(5+i%10) * time.Millisecond
			u.Passive.Unhealthy.TCPFailures = 1 + i%3
			u.Memory = 4 + i%20
			if err := c.Update(u); err != nil {
				t.Errorf("Update: %v", err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	for g := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				a := all[rng.IntN(len(all))]
				switch rng.IntN(4) {
				case 0, 1:
					c.ReportTCPFailure(a)
				case 2:
					c.ReportRetryAfter(a, 429, 20*time.Millisecond)
				default:
					c.ReportSuccess(a)
				}
				if i%16 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			}
		})
	}
	checks, maxSeen := 0, 0
	var problem string
	for ctx.Err() == nil && problem == "" {
		var n int
		n, problem = ejectedInside(c)
		maxSeen = max(maxSeen, n)
		checks++
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	wg.Wait()
	if problem != "" {
		t.Fatal(problem)
	}
	if _, problem := ejectedInside(c); problem != "" {
		t.Fatal(problem)
	}
	t.Logf("%d checks, up to %d ejected at once", checks, maxSeen)
	if maxSeen == 0 {
		t.Fatal("nothing was ever ejected")
	}
}

// Targets whose success rates are all the same are no outliers, whatever
// StdevFactor (any finite value ≥ 0 is valid): with 5 targets at 92% and a
// factor of 0.5, rounding puts the mean a hair above 92% and the standard
// deviation a hair above 0, and no target may be ejected for that.
func TestReviewEqualSuccessRatesAreNoOutliers(t *testing.T) {
	cfg := passiveOnly("review-equal")
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	cfg.Passive.Outlier = Outlier{Interval: 50 * time.Millisecond, MaxEjectionPercent: 100,
		SuccessRate: &SuccessRate{StdevFactor: 0.5, MinimumHosts: 5, RequestVolume: 100}}
	c := newChecker(t, cfg, nil, nil)
	as := loopback(22, 5, "equal.test")
	c.SetTargets(as)
	for _, a := range as {
		for i := range 100 {
			if i%12 == 6 && i < 96 { // 8 failures, never two in a row
				c.ReportHTTPStatus(a, 500)
			} else {
				c.ReportSuccess(a)
			}
		}
		if tg := mustTarget(t, c, a); tg.Passive != Healthy {
			t.Fatalf("setup: %+v", tg)
		}
	}
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "an outlier evaluation", func() bool { return c.Stats().OutlierEvaluations > 0 })
	if s := c.Stats(); s.Ejections != 0 {
		var reasons []string
		for _, tg := range c.Targets() {
			reasons = append(reasons, tg.Reason)
		}
		t.Fatalf("%d of 5 targets with the same success rate (92%%) ejected as outliers: %v", s.Ejections, reasons)
	}
}

// FailurePercentage ejects a target whose share of failures is above
// Threshold: exactly at it (3 failures in 10 requests, Threshold 30) is not
// above it, however the division rounds.
func TestReviewFailurePercentageAtThreshold(t *testing.T) {
	for _, tc := range []struct{ failed, total, threshold int }{{3, 10, 30}, {1, 20, 5}, {11, 20, 55}, {14, 25, 56}} {
		t.Run(fmt.Sprintf("%d of %d at %d%%", tc.failed, tc.total, tc.threshold), func(t *testing.T) {
			name := fmt.Sprintf("review-fp-%d-%d", tc.failed, tc.total)
			cfg := passiveOnly(name)
			cfg.Passive.Unhealthy = UnhealthyRules{HTTPFailures: 100, TCPFailures: 100, Timeouts: 100}
			cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
			cfg.Passive.Outlier = Outlier{Interval: 50 * time.Millisecond, MaxEjectionPercent: 100,
				FailurePercentage: &FailurePercentage{Threshold: tc.threshold, MinimumHosts: 1, RequestVolume: tc.total}}
			c := newChecker(t, cfg, nil, nil)
			as := loopback(23, 4, "fp.test")
			c.SetTargets(as)
			for i := range tc.total {
				if i < tc.failed {
					c.ReportHTTPStatus(as[0], 500)
				} else {
					c.ReportSuccess(as[0])
				}
				for _, a := range as[1:] {
					c.ReportSuccess(a)
				}
			}
			start(t, c)
			testutil.Eventually(t, 3*time.Second, "an outlier evaluation", func() bool { return c.Stats().OutlierEvaluations > 0 })
			if tg := mustTarget(t, c, as[0]); tg.Passive != Healthy {
				t.Fatalf("ejected at exactly the threshold: %q", tg.Reason)
			}
		})
	}
}

// Outlier detection turned on by Update while Run runs starts at once: a
// passive-only checker (no probe, no ejection to wake its scheduler)
// evaluates its first interval one Interval later.
func TestReviewOutlierDetectionTurnedOnByUpdate(t *testing.T) {
	cfg := passiveOnly("review-outlier-on")
	cfg.Passive.Unhealthy = UnhealthyRules{HTTPFailures: 1000, TCPFailures: 1000, Timeouts: 1000}
	c := newChecker(t, cfg, nil, nil)
	as := loopback(24, 5, "on.test")
	c.SetTargets(as)
	start(t, c)
	testutil.Eventually(t, time.Second, "Run to start", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.running
	})
	u := c.Config()
	u.Passive.Outlier = Outlier{Interval: 20 * time.Millisecond, MaxEjectionPercent: 100,
		FailurePercentage: &FailurePercentage{Threshold: 50, MinimumHosts: 1, RequestVolume: 10}}
	if err := c.Update(u); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c.ReportHTTPStatus(as[0], 500) // 100% failures: an outlier
	}
	testutil.Eventually(t, 2*time.Second, "outlier detection to run and eject the failing target", func() bool {
		return c.Stats().OutlierEvaluations > 0 && c.Status(as[0]) == Unhealthy
	})
}
