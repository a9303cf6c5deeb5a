package health

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A backend whose health endpoint fails while its traffic succeeds turns
// unhealthy, and passive successes streaming in from several goroutines
// never clear the active verdict: from the moment its probes fail until it
// is fixed the target never reads Healthy and no StatusChange takes it
// there (with counters shared between probes and traffic, as in
// lua-resty-healthcheck, the failure counter swings between 0 and 1 and
// never reaches its threshold). Once fixed, probes alone heal it.
func TestFailingProbesAmidSucceedingTraffic(t *testing.T) {
	bs := backends(t, "127.0.71.1", 2, nil)
	sick := bs[0]
	sick.SetPathStatus("/healthz", 500)
	cfg := fast("mask", 15*time.Millisecond)
	cfg.Active.Path = "/healthz"
	cfg.Active.Unhealthy.HTTPFailures = 3
	cfg.Passive.Healthy.Successes = 1
	bus := newBus(t)
	log := recordEvents(t, bus, "mask")
	c := newChecker(t, cfg, bus, nil)
	a := sick.Address("mask.test")
	c.SetTargets([]resolver.Address{a, bs[1].Address("mask.test")})

	// Successful traffic, far more often than probes, bounded in count and time.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var traffic sync.WaitGroup
	for g := range 2 {
		traffic.Go(func() {
			for i := 0; i < 10_000_000 && ctx.Err() == nil; i++ {
				if g == 0 {
					c.ReportHTTPStatus(a, 200)
				} else {
					c.ReportSuccess(a)
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	stopTraffic := func() { cancel(); traffic.Wait() }
	defer stopTraffic()
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "the target to turn unhealthy", func() bool { return c.Status(a) == Unhealthy })
	if tg, _ := c.Target(a); tg.Active != Unhealthy || tg.Passive != Healthy || tg.Reason != "HTTP 500 from GET /healthz" {
		t.Fatalf("target %+v; want active unhealthy for HTTP 500, passive healthy", tg)
	}
	completed := c.Stats().ProbesCompleted
	testutil.Eventually(t, 5*time.Second, "ten more probes", func() bool {
		if tg, _ := c.Target(a); tg.Status != Unhealthy || tg.Active != Unhealthy {
			t.Fatalf("succeeding traffic cleared a failing probe: %+v", tg)
		}
		return c.Stats().ProbesCompleted >= completed+10
	})
	stopTraffic()
	if tg, _ := c.Target(a); tg.PassiveCounts.Successes < 1000 {
		t.Fatalf("only %d passive successes were counted", tg.PassiveCounts.Successes)
	}
	testutil.Eventually(t, 2*time.Second, "the StatusChange", func() bool {
		es := log.to(a, Unhealthy)
		return len(es) == 1 && es[0].Reason == "HTTP 500 from GET /healthz" && es[0].Active == Unhealthy
	})
	if es := log.to(a, Healthy); len(es) > 0 {
		t.Fatalf("a StatusChange healed the target while its probes failed: %+v", es[0])
	}
	sick.SetPathStatus("/healthz", 0)
	testutil.Eventually(t, 3*time.Second, "probes to heal it once fixed", func() bool { return c.Status(a) == Healthy })
}

// Probes never reset the passive counters: passing and failing probes
// leave every passive counter, the passive verdict and probation alone.
func TestProbesNeverResetPassiveCounters(t *testing.T) {
	pr := newScripted()
	cfg := fast("counters", 5*time.Millisecond)
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

// An ejection ends at its deadline with nothing else happening (no probe,
// no report), not a moment before, as a StatusChange "ejection over";
// then the target is on probation, where one failure ejects it again for
// twice as long; successes reaching their threshold end probation, after
// which one failure no longer ejects. On the fake clock of a synctest
// bubble, with the default durations and no jitter, the deadlines are exact.
func TestEjectionDeadlineAndProbation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		log := recordEvents(t, bus, "deadline")
		c := newChecker(t, passiveOnly("deadline"), bus, nil)
		c.jitter = func() float64 { return 0 }
		a := loopback(17, 1, "deadline.test")[0]
		c.SetTargets([]resolver.Address{a})
		start(t, c)

		// lasts waits out an ejection of d that started at from: it holds
		// until a moment before its deadline and ends exactly at it.
		lasts := func(n int, from time.Time, d time.Duration) {
			t.Helper()
			tg := mustTarget(t, c, a)
			if tg.Passive != Unhealthy || tg.Ejections != n || !tg.EjectedUntil.Equal(from.Add(d)) {
				t.Fatalf("ejection %d: %+v; want until %v", n, tg, from.Add(d))
			}
			time.Sleep(time.Until(tg.EjectedUntil) - time.Nanosecond)
			synctest.Wait()
			if tg := mustTarget(t, c, a); tg.Passive != Unhealthy {
				t.Fatalf("ejection %d ended before its deadline: %+v", n, tg)
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			if tg := mustTarget(t, c, a); tg.Passive != Healthy || !tg.Probation || tg.Reason != "ejection over" {
				t.Fatalf("at the deadline of ejection %d: %+v; want over, on probation", n, tg)
			}
		}
		began := time.Now()
		c.ReportTCPFailure(a)
		c.ReportTCPFailure(a) // the passive threshold: 2
		lasts(1, began, DefaultEjectionBase)

		again := time.Now()
		c.ReportTCPFailure(a) // one failure on probation ejects again
		lasts(2, again, 2*DefaultEjectionBase)

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
		if s := c.Stats(); s.Ejections != 2 || s.ProbesStarted != 0 {
			t.Fatalf("stats %+v; want 2 ejections, no probe", s)
		}
		synctest.Wait()
		es := log.all()
		if len(es) != 4 {
			t.Fatalf("%d StatusChanges, want 4: %+v", len(es), es)
		}
		for i, e := range es {
			ejected := i%2 == 0
			if e.Reason == "" || (e.Passive == Unhealthy) != ejected || e.Until.IsZero() != !ejected {
				t.Errorf("StatusChange %d: %+v", i, e)
			}
		}
	})
}

// A 429 or 503 with Retry-After ejects for the advised time, capped at
// Ejection.Max, and neither passing probes nor passive successes end it:
// only its deadline does. Other codes count as plain statuses.
func TestRetryAfterEjects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := newScripted() // every probe passes at once
		cfg := fast("ra", time.Second)
		cfg.Active.Prober = pr
		cfg.Passive.Healthy.Successes = 1
		cfg.Passive.Ejection = Ejection{Base: 10 * time.Second, Max: time.Minute}
		c := newChecker(t, cfg, nil, nil)
		as := loopback(18, 2, "ra.test")
		a, b := as[0], as[1]
		c.SetTargets(as)
		start(t, c)
		synctest.Wait()

		at := time.Now()
		c.ReportRetryAfter(a, 503, 20*time.Second)
		tg := mustTarget(t, c, a)
		if tg.Passive != Unhealthy || tg.Reason != "HTTP 503 with Retry-After 20s" || !tg.EjectedUntil.Equal(at.Add(20*time.Second)) {
			t.Fatalf("after Retry-After 20s: %+v", tg)
		}
		probes := pr.callsOf(a)
		for range 19 {
			time.Sleep(time.Second)
			c.ReportSuccess(a)
			synctest.Wait()
			if got := mustTarget(t, c, a); got.Passive != Unhealthy {
				t.Fatalf("the Retry-After ejection ended %v early: %+v", time.Until(tg.EjectedUntil), got)
			}
		}
		if n := pr.callsOf(a) - probes; n < 15 {
			t.Fatalf("only %d probes during the ejection", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if s := c.Status(a); s != Healthy {
			t.Fatalf("at its deadline the advised ejection still holds: %v", s)
		}

		c.ReportRetryAfter(a, 429, time.Hour)
		if tg := mustTarget(t, c, a); !tg.EjectedUntil.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("Retry-After 1h ejects until %v, want Max 1m from now", tg.EjectedUntil)
		}
		c.ReportRetryAfter(b, 500, time.Minute) // not a code that advises waiting
		if tg := mustTarget(t, c, b); tg.Passive != Healthy || tg.PassiveCounts.HTTPFailures != 1 {
			t.Fatalf("a 500 with Retry-After: %+v", tg)
		}
	})
}
