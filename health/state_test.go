package health

import (
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// testRules are small thresholds and a 10s ejection base.
var testRules = rules{
	active:   thresholds{successes: 2, httpFailures: 3, tcpFailures: 2, timeouts: 2},
	passive:  thresholds{successes: 3, httpFailures: 3, tcpFailures: 2, timeouts: 2},
	ejection: Ejection{Base: 10 * time.Second, Max: 35 * time.Second},
	probed:   true,
}

// Each verdict follows lua-resty-healthcheck: a success resets the failure
// counters, a failure resets successes, thresholds flip the status.
func TestActiveVerdict(t *testing.T) {
	cases := []struct {
		name  string
		start Status
		first bool // untilFirst
		seq   []outcome
		want  Status
	}{
		{"tcp failures reach threshold", Healthy, false, []outcome{tcpFailure, tcpFailure}, Unhealthy},
		{"a success in between resets", Healthy, false, []outcome{tcpFailure, success, tcpFailure}, Healthy},
		{"kinds count separately", Healthy, false, []outcome{tcpFailure, timeout, httpFailure, httpFailure}, Healthy},
		{"ignored changes nothing", Healthy, false, []outcome{tcpFailure, ignored, tcpFailure}, Unhealthy},
		{"successes heal", Unhealthy, false, []outcome{success, success}, Healthy},
		{"a failure resets successes", Unhealthy, false, []outcome{success, timeout, success}, Unhealthy},
		{"first success heals a new target", Unhealthy, true, []outcome{success}, Healthy},
		{"a new target stays unhealthy until its first success", Unhealthy, true, []outcome{timeout, httpFailure, timeout, success}, Healthy},
		{"after its first success the threshold applies", Unhealthy, true, []outcome{success, timeout, timeout, success}, Unhealthy},
	}
	now := time.Unix(1000, 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newState(Healthy, now)
			s.active.status, s.active.untilFirst = tc.start, tc.first
			for _, o := range tc.seq {
				s.probeOutcome(o, "x", &testRules, now, now)
			}
			if got := s.status(); got != tc.want {
				t.Fatalf("status %v, want %v (%+v)", got, tc.want, s.active)
			}
			if s.passive.status != Healthy || s.passive.Counters != (Counters{}) {
				t.Fatalf("probes moved the passive verdict: %+v", s.passive)
			}
		})
	}
}

// Passive successes never clear an active failure, and probes never reset
// passive counters: a health endpoint that fails while the traffic succeeds
// is unhealthy (with shared counters steady traffic would hide it).
func TestVerdictsDoNotMaskEachOther(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newState(Healthy, now)
	for i := range 20 {
		s.probeOutcome(httpFailure, "HTTP 500", &testRules, now, now)
		for range 5 {
			s.reportOutcome(success, cause{text: "success"}, &testRules, true, now, 0)
		}
		if i >= 2 && s.status() != Unhealthy {
			t.Fatalf("after %d failed probes amid successful traffic the target is %v", i+1, s.status())
		}
	}
	if s.active.status != Unhealthy || s.passive.status != Healthy {
		t.Fatalf("active %v, passive %v; want unhealthy, healthy", s.active.status, s.passive.status)
	}

	s = newState(Healthy, now)
	s.reportOutcome(tcpFailure, cause{text: "connection failure"}, &testRules, true, now, 0)
	for range 10 {
		s.probeOutcome(success, "HTTP 200", &testRules, now, now)
	}
	if s.passive.TCPFailures != 1 {
		t.Fatalf("probes reset the passive counters: %+v", s.passive.Counters)
	}
}

// An ejection lasts Base × recent ejections, capped at Max, less the
// jitter; it ends at its deadline, then the target is on probation, where
// one failure ejects it again for longer.
func TestEjection(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newState(Healthy, t0)
	eject := func(at time.Time) {
		t.Helper()
		for range testRules.passive.tcpFailures {
			s.reportOutcome(tcpFailure, cause{text: "connection failure"}, &testRules, true, at, 0)
		}
		if !s.passive.ejected() {
			t.Fatalf("not ejected after %d TCP failures", testRules.passive.tcpFailures)
		}
	}
	eject(t0)
	if got := s.passive.until.Sub(t0); got != 10*time.Second {
		t.Fatalf("first ejection lasts %v, want 10s", got)
	}
	if r := s.expire(t0.Add(9*time.Second), &testRules); r != "" || !s.passive.ejected() {
		t.Fatal("ejection ended before its deadline")
	}
	t1 := t0.Add(10 * time.Second)
	if r := s.expire(t1, &testRules); r == "" || s.passive.ejected() || !s.passive.probation {
		t.Fatalf("at its deadline: reason %q, %+v; want ended, on probation", r, s.passive)
	}
	// On probation one failure ejects again, for twice as long.
	if r := s.reportOutcome(httpFailure, cause{text: "HTTP 500"}, &testRules, true, t1, 0); r == "" || !s.passive.ejected() {
		t.Fatalf("a failure on probation: reason %q, %+v", r, s.passive)
	}
	if got := s.passive.until.Sub(t1); got != 20*time.Second {
		t.Fatalf("second ejection lasts %v, want 20s", got)
	}
	t2 := t1.Add(20 * time.Second)
	s.expire(t2, &testRules)
	s.reportOutcome(timeout, cause{text: "timeout"}, &testRules, true, t2, 0)
	if got := s.passive.until.Sub(t2); got != 30*time.Second {
		t.Fatalf("third ejection lasts %v, want 30s", got)
	}
	t3 := t2.Add(30 * time.Second)
	s.expire(t3, &testRules)
	s.reportOutcome(timeout, cause{text: "timeout"}, &testRules, true, t3, 0)
	if got := s.passive.until.Sub(t3); got != 35*time.Second {
		t.Fatalf("fourth ejection lasts %v, want Max 35s", got)
	}
	// Successes on probation end it.
	t4 := t3.Add(35 * time.Second)
	s.expire(t4, &testRules)
	for range testRules.passive.successes {
		s.reportOutcome(success, cause{text: "success"}, &testRules, true, t4, 0)
	}
	if s.passive.probation {
		t.Fatal("still on probation after the successes threshold")
	}
	// Recent ejections decay: after 4 × Base without one, the next is short again.
	t5 := t4.Add(40 * time.Second)
	eject(t5)
	if got := s.passive.until.Sub(t5); got != 10*time.Second {
		t.Fatalf("ejection after a long quiet spell lasts %v, want 10s", got)
	}
	// Jitter only shortens, by at most 10%.
	s = newState(Healthy, t0)
	for range 2 {
		s.reportOutcome(tcpFailure, cause{text: "x"}, &testRules, true, t0, 0.999)
	}
	if got := s.passive.until.Sub(t0); got > 10*time.Second || got < 9*time.Second {
		t.Fatalf("jittered ejection lasts %v, want 9s..10s", got)
	}
}

// An ejection ends early when passing probes reach the active success
// threshold (when unhealthy targets are probed; see TestReadmission) or
// when passive successes reach theirs; one a Retry-After advised ends at
// its deadline only.
func TestEjectionEndsEarly(t *testing.T) {
	now := time.Unix(1000, 0)
	ejected := func(r *rules) state {
		s := newState(Healthy, now)
		for range r.passive.tcpFailures {
			s.reportOutcome(tcpFailure, cause{text: "x"}, r, true, now, 0)
		}
		return s
	}
	s := ejected(&testRules)
	s.probeOutcome(success, "HTTP 200 from GET /", &testRules, now, now)
	if !s.passive.ejected() {
		t.Fatal("one passing probe ended the ejection; the threshold is 2")
	}
	if r := s.probeOutcome(success, "HTTP 200 from GET /", &testRules, now, now); s.passive.ejected() ||
		r != "ejection ended early: 2 probes passed (HTTP 200 from GET /)" {
		t.Fatalf("two passing probes: reason %q, %+v", r, s.passive)
	}
	noProbes := testRules
	noProbes.probed = false
	s = ejected(&noProbes)
	s.probeOutcome(success, "HTTP 200", &noProbes, now, now)
	s.probeOutcome(success, "HTTP 200", &noProbes, now, now)
	if !s.passive.ejected() {
		t.Fatal("a probe ended an ejection although unhealthy targets are not probed")
	}
	for range noProbes.passive.successes {
		s.reportOutcome(success, cause{text: "success"}, &noProbes, true, now, 0)
	}
	if s.passive.ejected() || s.passive.probation {
		t.Fatalf("passive successes did not end the ejection: %+v", s.passive)
	}

	s = newState(Healthy, now)
	s.retryAfter(503, 5*time.Second, &testRules, now)
	if !s.passive.ejected() || s.passive.until != now.Add(5*time.Second) {
		t.Fatalf("Retry-After 5s: %+v", s.passive)
	}
	for range 10 {
		s.probeOutcome(success, "HTTP 200", &testRules, now, now)
		s.reportOutcome(success, cause{text: "success"}, &testRules, true, now, 0)
	}
	if !s.passive.ejected() {
		t.Fatal("an advised ejection ended before its deadline")
	}
	if s.expire(now.Add(5*time.Second), &testRules); s.passive.ejected() {
		t.Fatal("an advised ejection outlived its deadline")
	}
	s.retryAfter(429, time.Hour, &testRules, now)
	if got := s.passive.until.Sub(now); got != testRules.ejection.Max {
		t.Fatalf("Retry-After 1h ejects for %v, want Max %v", got, testRules.ejection.Max)
	}
}

// When the ejection cap is reached (mayEject false), failures count but eject
// nothing.
func TestEjectionCap(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newState(Healthy, now)
	for range 5 {
		s.reportOutcome(tcpFailure, cause{text: "x"}, &testRules, false, now, 0)
	}
	if s.passive.ejected() || s.passive.TCPFailures != 5 {
		t.Fatalf("capped: %+v", s.passive)
	}
	s.reportOutcome(tcpFailure, cause{text: "x"}, &testRules, true, now, 0)
	if !s.passive.ejected() {
		t.Fatal("not ejected once the cap allows it")
	}
}

// With Initial Unhealthy a new target is unhealthy until its first check
// passes (R7), not until the success threshold is reached: a probe when
// unhealthy targets are probed, else a reported success.
func TestInitialUnhealthy(t *testing.T) {
	t.Run("passive", func(t *testing.T) {
		cfg := passiveOnly("init")
		cfg.Initial = Unhealthy
		c := newChecker(t, cfg, nil, nil)
		a := resolver.Address{IP: mustIP("127.0.7.21"), Port: 80}
		c.SetTargets([]resolver.Address{a})
		if c.Status(a) != Unhealthy {
			t.Fatalf("new target %v", c.Status(a))
		}
		c.ReportSuccess(a)
		if c.Status(a) != Healthy {
			t.Fatalf("after a success: %v", c.Status(a))
		}
	})
	t.Run("active ignores reports", func(t *testing.T) {
		cfg := fast("init", time.Hour)
		cfg.Initial = Unhealthy
		c := newChecker(t, cfg, nil, nil)
		a := resolver.Address{IP: mustIP("127.0.7.23"), Port: 80}
		c.SetTargets([]resolver.Address{a})
		for range 10 {
			c.ReportSuccess(a)
		}
		if c.Status(a) != Unhealthy {
			t.Fatalf("reported successes healed a target waiting for its first probe: %v", c.Status(a))
		}
	})
	t.Run("active", func(t *testing.T) {
		bs := backends(t, "127.0.7.20", 1, nil)
		cfg := fast("init", 20*time.Millisecond)
		cfg.Initial = Unhealthy
		cfg.Active.Healthy.Successes = 50
		c := newChecker(t, cfg, nil, nil)
		a := bs[0].Address("")
		c.SetTargets([]resolver.Address{a})
		if c.Status(a) != Unhealthy {
			t.Fatalf("new target %v", c.Status(a))
		}
		start(t, c)
		testutil.Eventually(t, 3*time.Second, "the first probe to pass", func() bool { return c.Status(a) == Healthy })
		if n := c.Stats().ProbesCompleted; n >= 50 {
			t.Fatalf("healthy after %d probes", n)
		}
	})
	t.Run("failing first", func(t *testing.T) {
		bs := backends(t, "127.0.7.22", 1, nil)
		bs[0].SetStatus(500)
		cfg := fast("init", 20*time.Millisecond)
		cfg.Initial = Unhealthy
		cfg.Active.Healthy.Successes = 50
		c := newChecker(t, cfg, nil, nil)
		a := bs[0].Address("")
		c.SetTargets([]resolver.Address{a})
		start(t, c)
		testutil.Eventually(t, 3*time.Second, "three failed probes", func() bool { tg, _ := c.Target(a); return tg.HTTPFailures >= 3 })
		if s := c.Status(a); s != Unhealthy {
			t.Fatalf("after failed probes: %v", s)
		}
		// Until a probe has passed, the first success heals, whatever came before.
		bs[0].SetStatus(200)
		testutil.Eventually(t, 3*time.Second, "the first probe to pass", func() bool { return c.Status(a) == Healthy })
		if tg, _ := c.Target(a); tg.Successes >= 50 {
			t.Fatalf("healthy after %d successes", tg.Successes)
		}
	})
}

// Re-admission that escalation cannot be cheated of: passing probes end
// only the first of recent ejections, and only once the active success
// threshold of probes started during it have passed in a row; a repeated
// ejection (the target failed its traffic again after probes let it back)
// runs to its deadline; and an ejection cut short counts, for the decay of
// recent ejections, as if it had lasted to its deadline.
func TestReadmission(t *testing.T) {
	r := testRules // Base 10s, Max 35s; active successes 2; passive TCP failures 2
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := newState(Healthy, t0)
	fail := func(now time.Time, n int) {
		t.Helper()
		for range n {
			s.reportOutcome(tcpFailure, cause{text: "connection failure"}, &r, true, now, 0)
		}
	}
	probe := func(o outcome, started, now time.Time) string {
		return s.probeOutcome(o, "HTTP 200 from GET /", &r, started, now)
	}

	fail(t0, 2) // the first ejection: 10s
	if !s.passive.ejected() || s.passive.ejections != 1 {
		t.Fatalf("not ejected: %+v", s.passive)
	}
	probe(success, at(-time.Second), at(100*time.Millisecond)) // started before it: does not count
	probe(success, at(time.Second), at(time.Second))
	probe(httpFailure, at(2*time.Second), at(2*time.Second)) // a failure starts the count over
	probe(success, at(3*time.Second), at(3*time.Second))
	if !s.passive.ejected() {
		t.Fatalf("ended by probes that were not %d passing in a row: %+v", r.active.successes, s.passive)
	}
	if why := probe(success, at(4*time.Second), at(4*time.Second)); s.passive.ejected() || why == "" || !s.passive.probation {
		t.Fatalf("two passing probes in a row: %q, %+v; want the first ejection ended, on probation", why, s.passive)
	}

	fail(at(5*time.Second), 1) // on probation: ejected again, for 20s
	if !s.passive.ejected() || s.passive.ejections != 2 || !s.passive.until.Equal(at(25*time.Second)) {
		t.Fatalf("the repeated ejection: %+v", s.passive)
	}
	for i := range 10 {
		now := at(time.Duration(6+i) * time.Second)
		probe(success, now, now)
	}
	if !s.passive.ejected() {
		t.Fatal("passing probes ended a repeated ejection")
	}
	if why := s.expire(at(25*time.Second), &r); why == "" || s.passive.ejected() {
		t.Fatalf("at its deadline: %q, %+v", why, s.passive)
	}
	for range r.passive.successes {
		s.reportOutcome(success, cause{text: "success"}, &r, true, at(26*time.Second), 0)
	}
	if s.passive.probation {
		t.Fatal("still on probation after the passive success threshold")
	}
}

// An ejection cut short by probes counts towards the next one's length as
// if it had lasted to its deadline: recent ejections decay one per Base
// from the later of its end and its deadline.
func TestEjectionCutShortStillCounts(t *testing.T) {
	r := testRules // Base 10s
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name  string
		again time.Duration // when the next ejection starts
		want  time.Duration // and how long it lasts
	}{
		{"within Base of the deadline", 15 * time.Second, 20 * time.Second},
		{"one Base after the deadline", 20 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newState(Healthy, t0)
			for range 2 {
				s.reportOutcome(tcpFailure, cause{text: "x"}, &r, true, t0, 0) // deadline t0+10s
			}
			s.probeOutcome(success, "ok", &r, at(time.Second), at(time.Second))
			s.probeOutcome(success, "ok", &r, at(2*time.Second), at(2*time.Second)) // ended at t0+2s
			for range r.passive.successes {
				s.reportOutcome(success, cause{text: "ok"}, &r, true, at(3*time.Second), 0) // probation over
			}
			if s.passive.ejected() || s.passive.probation {
				t.Fatalf("setup: %+v", s.passive)
			}
			for range 2 {
				s.reportOutcome(tcpFailure, cause{text: "x"}, &r, true, at(tc.again), 0)
			}
			if got := s.passive.until.Sub(at(tc.again)); got != tc.want {
				t.Fatalf("the next ejection lasts %v, want %v", got, tc.want)
			}
		})
	}
}
