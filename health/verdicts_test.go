package health

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A backend whose health endpoint fails while its traffic succeeds turns
// unhealthy: passive successes streaming in never clear the active verdict
// (with counters shared between probes and traffic, lua-resty-healthcheck's
// counters swing between 0 and 1 and never reach the threshold).
func TestFailingProbesAmidSucceedingTraffic(t *testing.T) {
	bs := backends(t, "127.0.71.1", 1, nil)
	bs[0].SetPathStatus("/healthz", 500)
	cfg := fast("mask", 20*time.Millisecond)
	cfg.Active.Path = "/healthz"
	cfg.Active.Unhealthy.HTTPFailures = 3
	bus := newBus(t)
	log := recordEvents(t, bus, "mask")
	c := newChecker(t, cfg, bus, nil)
	a := bs[0].Address("mask.test")
	c.SetTargets([]resolver.Address{a})

	ctx, cancel := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	traffic.Go(func() { // successful traffic, far more often than probes
		for ctx.Err() == nil {
			c.ReportHTTPStatus(a, 200)
			time.Sleep(time.Millisecond)
		}
	})
	defer func() { cancel(); traffic.Wait() }()
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "the target to turn unhealthy", func() bool { return c.Status(a) == Unhealthy })
	tg, _ := c.Target(a)
	if tg.Active != Unhealthy || tg.Passive != Healthy || tg.Reason != "HTTP 500" {
		t.Fatalf("target %+v; want active unhealthy for HTTP 500, passive healthy", tg)
	}
	testutil.Eventually(t, 2*time.Second, "the StatusChange", func() bool {
		es := log.to(a, Unhealthy)
		return len(es) == 1 && es[0].Reason == "HTTP 500" && es[0].Active == Unhealthy
	})
	// It stays unhealthy while the traffic keeps succeeding.
	before := c.Stats().ProbesCompleted
	testutil.Eventually(t, 3*time.Second, "more probes", func() bool { return c.Stats().ProbesCompleted >= before+5 })
	if s := c.Status(a); s != Unhealthy {
		t.Fatalf("succeeding traffic healed a target whose probes fail: %v", s)
	}
}

// An ejection ends by itself, with no probe and no report, and the second
// one lasts longer; both and their ends are StatusChanges with a reason.
func TestEjectionEndsWithoutProbesOrReports(t *testing.T) {
	cfg := passiveOnly("ej")
	cfg.Passive.Ejection = Ejection{Base: 150 * time.Millisecond, Max: time.Second}
	bus := newBus(t)
	log := recordEvents(t, bus, "ej")
	c := newChecker(t, cfg, bus, nil)
	a := resolver.Address{IP: mustIP("127.0.71.10"), Port: 80}
	c.SetTargets([]resolver.Address{a})
	start(t, c)

	eject := func() time.Duration {
		t.Helper()
		c.ReportTCPFailure(a)
		c.ReportTCPFailure(a) // the passive threshold: 2
		tg, _ := c.Target(a)
		if tg.Status != Unhealthy || tg.Passive != Unhealthy || tg.EjectedUntil.IsZero() {
			t.Fatalf("after two TCP failures: %+v", tg)
		}
		began := time.Now()
		testutil.Eventually(t, 3*time.Second, "the ejection to end by itself", func() bool { return c.Status(a) == Healthy })
		return time.Since(began)
	}
	first := eject()
	if tg, _ := c.Target(a); !tg.Probation {
		t.Fatalf("after an ejection the target is not on probation: %+v", tg)
	}
	// On probation one failure ejects again, for twice the base.
	c.ReportTCPFailure(a)
	tg, _ := c.Target(a)
	if tg.Passive != Unhealthy {
		t.Fatalf("a failure on probation did not eject: %+v", tg)
	}
	if d := time.Until(tg.EjectedUntil); d < 200*time.Millisecond {
		t.Fatalf("the second ejection lasts %v, want about 300ms (first took %v)", d, first)
	}
	testutil.Eventually(t, 3*time.Second, "the second ejection to end", func() bool { return c.Status(a) == Healthy })
	if s := c.Stats(); s.Ejections != 2 || s.ProbesStarted != 0 {
		t.Fatalf("stats %+v; want 2 ejections, no probe", s)
	}
	testutil.Eventually(t, 2*time.Second, "four StatusChanges", func() bool { return len(log.all()) == 4 })
	for i, e := range log.all() {
		if e.Reason == "" {
			t.Errorf("StatusChange %d has no reason: %+v", i, e)
		}
		if e.To == Unhealthy && e.Until.IsZero() {
			t.Errorf("ejection %d says nothing of its end: %+v", i, e)
		}
	}
}

// An ejection is state of the target: it moves into memory and comes back
// with the address (Envoy's and gRPC's outlier detection forget an address
// that leaves: a flapping DNS answer would reset the ejection).
func TestEjectionIsRemembered(t *testing.T) {
	cfg := passiveOnly("ejm")
	cfg.Passive.Ejection = Ejection{Base: time.Hour}
	c := newChecker(t, cfg, nil, nil)
	a := resolver.Address{IP: mustIP("127.0.71.20"), Port: 80}
	b := resolver.Address{IP: mustIP("127.0.71.21"), Port: 80}
	c.SetTargets([]resolver.Address{a, b})
	c.ReportHTTPStatus(a, 503)
	c.ReportTimeout(a)
	for range 5 {
		c.ReportHTTPStatus(a, 500)
	}
	before, _ := c.Target(a)
	if before.Passive != Unhealthy {
		t.Fatalf("not ejected: %+v", before)
	}
	c.SetTargets([]resolver.Address{b})
	if s := c.Stats(); s.Ejected != 0 {
		t.Fatalf("a departed target counts as ejected: %+v", s)
	}
	if r, ok := c.Remembered(a); !ok || r.Passive != Unhealthy || r.EjectedUntil != before.EjectedUntil {
		t.Fatalf("remembered %v: %+v", ok, r)
	}
	c.SetTargets([]resolver.Address{a, b})
	after, _ := c.Target(a)
	if after.Status != Unhealthy || after.EjectedUntil != before.EjectedUntil || after.PassiveCounts != before.PassiveCounts ||
		after.Ejections != before.Ejections {
		t.Fatalf("came back as %+v, left as %+v", after, before)
	}
	if s := c.Stats(); s.Ejected != 1 {
		t.Fatalf("the returned ejection is not counted: %+v", s)
	}
}

// A 429 or 503 with Retry-After ejects for the advised time (capped at
// Max); other codes count as plain statuses.
func TestRetryAfterEjects(t *testing.T) {
	cfg := passiveOnly("ra")
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	c := newChecker(t, cfg, nil, nil)
	a := resolver.Address{IP: mustIP("127.0.71.30"), Port: 80}
	b := resolver.Address{IP: mustIP("127.0.71.31"), Port: 80}
	c.SetTargets([]resolver.Address{a, b})

	c.ReportRetryAfter(a, 503, 200*time.Millisecond)
	tg, _ := c.Target(a)
	if tg.Passive != Unhealthy || tg.Reason != "HTTP 503 with Retry-After 200ms" {
		t.Fatalf("after Retry-After: %+v", tg)
	}
	if d := time.Until(tg.EjectedUntil); d > 200*time.Millisecond || d < 100*time.Millisecond {
		t.Fatalf("ejected for %v, want 200ms", d)
	}
	c.ReportRetryAfter(b, 500, time.Minute) // not a code that advises waiting
	if tg, _ := c.Target(b); tg.Passive != Healthy || tg.PassiveCounts.HTTPFailures != 1 {
		t.Fatalf("a 500 with Retry-After: %+v", tg)
	}
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "the advised ejection to end", func() bool { return c.Status(a) == Healthy })
}

// Outlier detection ejects a target failing half its requests among ten
// healthy ones, and never more targets than MaxEjectionPercent allows.
func TestOutlierDetection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing int // of 11 targets, each failing half its requests
		algo    func(*Outlier)
		want    int
	}{
		{"success rate", 1, func(o *Outlier) { o.SuccessRate = &SuccessRate{RequestVolume: 20} }, 1},
		{"failure percentage", 1, func(o *Outlier) { o.FailurePercentage = &FailurePercentage{Threshold: 40, RequestVolume: 20} }, 1},
		{"capped", 5, func(o *Outlier) { o.FailurePercentage = &FailurePercentage{Threshold: 40, RequestVolume: 20} }, 1},
		{"below the request volume", 1, func(o *Outlier) { o.SuccessRate = &SuccessRate{RequestVolume: 1000} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := passiveOnly("od")
			cfg.Passive.Ejection = Ejection{Base: time.Hour}
			cfg.Passive.Unhealthy = UnhealthyRules{HTTPFailures: 1000, TCPFailures: 1000, Timeouts: 1000}
			cfg.Passive.Outlier = Outlier{Interval: 100 * time.Millisecond}
			tc.algo(&cfg.Passive.Outlier)
			bus := newBus(t)
			log := recordEvents(t, bus, "od")
			c := newChecker(t, cfg, bus, nil)
			var as []resolver.Address
			for i := range 11 {
				as = append(as, resolver.Address{IP: mustIP("127.0.72." + strconv.Itoa(i+1)), Port: 80})
			}
			c.SetTargets(as)
			traffic := func() {
				for i, a := range as {
					for j := range 40 {
						if i < tc.failing && j%2 == 0 {
							c.ReportHTTPStatus(a, 500)
						} else {
							c.ReportSuccess(a)
						}
					}
				}
			}
			start(t, c)
			for n := range uint64(3) { // one round of traffic per interval; an interval may split one
				traffic()
				testutil.Eventually(t, 3*time.Second, "an evaluation", func() bool { return c.Stats().OutlierEvaluations > n })
			}
			if got := c.Stats().Ejected; got != tc.want {
				t.Fatalf("%d targets ejected, want %d: %v", got, tc.want, log.all())
			}
			for _, a := range as[tc.failing:] {
				if c.Status(a) != Healthy {
					t.Fatalf("a healthy target was ejected: %v", a)
				}
			}
			if tc.want > 0 {
				es := log.all()
				if len(es) == 0 || len(es[0].Reason) < 8 || es[0].Reason[:8] != "outlier:" {
					t.Fatalf("ejections %+v; want an outlier reason", es)
				}
			}
		})
	}
}
