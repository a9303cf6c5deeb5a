package health

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A config update (thresholds, intervals, path, type) keeps every status (R5).
func TestUpdateKeepsStatuses(t *testing.T) {
	bs := backends(t, "127.0.7.1", 2, nil)
	bs[0].SetStatus(500)
	bad, good := bs[0].Address("bad.test"), bs[1].Address("good.test")
	bus := newBus(t)
	log := recordEvents(t, bus, "up6")
	base := fast("up6", 20*time.Millisecond)
	c := newChecker(t, base, bus, nil)
	start(t, c)
	c.SetTargets([]resolver.Address{bad, good})
	testutil.Eventually(t, 3*time.Second, "bad to turn unhealthy", func() bool { return c.Status(bad) == Unhealthy })
	testutil.Eventually(t, 3*time.Second, "good to be probed", func() bool { tg, _ := c.Target(good); return tg.Successes >= 2 })
	testutil.Eventually(t, 3*time.Second, "bad's StatusChange delivered", func() bool { return len(log.to(bad, Unhealthy)) == 1 })
	nEvents := len(log.all())

	updates := []struct {
		name string
		edit func(*Config)
	}{
		{"raise thresholds", func(c *Config) {
			c.Active.Unhealthy.HTTPFailures = 50
			c.Active.Healthy.Successes = 50
			c.Passive.Unhealthy.TCPFailures = 9
		}},
		{"slower intervals", func(c *Config) {
			c.Active.Healthy.Interval = 40 * time.Millisecond
			c.Active.Unhealthy.Interval = 30 * time.Millisecond
		}},
		{"new path", func(c *Config) { c.Active.Path = "/healthz" }},
		{"new status lists", func(c *Config) { c.Active.Healthy.HTTPStatuses = []int{200, 204} }},
		{"memory size", func(c *Config) { c.Memory = 3 }},
		{"back to the start", func(c *Config) {}},
	}
	for _, u := range updates {
		t.Run(u.name, func(t *testing.T) {
			cfg := base
			u.edit(&cfg)
			before := c.Stats().ProbesStarted
			if err := c.Update(cfg); err != nil {
				t.Fatal(err)
			}
			if c.Status(bad) != Unhealthy || c.Status(good) != Healthy {
				t.Fatalf("after update: bad %v, good %v", c.Status(bad), c.Status(good))
			}
			testutil.Eventually(t, 3*time.Second, "probing to go on", func() bool { return c.Stats().ProbesStarted >= before+4 })
			if c.Status(bad) != Unhealthy || c.Status(good) != Healthy {
				t.Fatalf("after probes: bad %v, good %v", c.Status(bad), c.Status(good))
			}
		})
	}
	if evs := log.all(); len(evs) != nEvents {
		t.Fatalf("updates caused status changes: %v", evs[nEvents:])
	}
	if bs[1].Paths()["/healthz"] == 0 {
		t.Fatal("the new path was never probed")
	}
}

// Lowered thresholds apply to the current counters at once; raised ones
// move nothing.
func TestUpdateReevaluatesThresholds(t *testing.T) {
	bus := newBus(t)
	log := recordEvents(t, bus, "up6t")
	cfg := passiveOnly("up6t")
	c := newChecker(t, cfg, bus, nil)
	a := resolver.Address{IP: mustIP("127.0.7.10"), Port: 80}
	b := resolver.Address{IP: mustIP("127.0.7.11"), Port: 80}
	c.SetTargets([]resolver.Address{a, b})
	for range 2 {
		c.ReportHTTPStatus(a, 500) // passive threshold 5: still healthy
	}
	for range 2 {
		c.ReportTCPFailure(b) // passive threshold 2: unhealthy
	}
	c.ReportSuccess(b)
	c.ReportSuccess(b) // 2 of 5 successes
	if c.Status(a) != Healthy || c.Status(b) != Unhealthy {
		t.Fatalf("setup: a %v, b %v", c.Status(a), c.Status(b))
	}

	raised := cfg
	raised.Passive.Unhealthy.HTTPFailures = 10
	raised.Passive.Healthy.Successes = 10
	if err := c.Update(raised); err != nil {
		t.Fatal(err)
	}
	if c.Status(a) != Healthy || c.Status(b) != Unhealthy {
		t.Fatalf("raising moved statuses: a %v, b %v", c.Status(a), c.Status(b))
	}

	lowered := cfg
	lowered.Passive.Unhealthy.HTTPFailures = 2
	lowered.Passive.Healthy.Successes = 2
	if err := c.Update(lowered); err != nil {
		t.Fatal(err)
	}
	if c.Status(a) != Unhealthy || c.Status(b) != Healthy {
		t.Fatalf("lowering: a %v, b %v", c.Status(a), c.Status(b))
	}
	if tg, _ := c.Target(a); tg.PassiveCounts.HTTPFailures != 2 {
		t.Fatalf("counters changed: %+v", tg)
	}
	testutil.Eventually(t, 2*time.Second, "both status changes published", func() bool {
		return len(log.to(a, Unhealthy)) == 1 && len(log.to(b, Healthy)) == 1
	})
}

// Update never resets a verdict: with new probe settings, new intervals,
// thresholds raised, new ejection durations, outlier detection turned on
// and a new memory size, every target keeps its status, both verdicts,
// every counter, its ejection and probation, and remembered targets keep
// theirs.
func TestUpdateNeverResetsVerdicts(t *testing.T) {
	cfg := fast("update", time.Hour)
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
			if !reflect.DeepEqual(after[j], before[j]) {
				t.Fatalf("step %d changed %v:\n got %+v\nwant %+v", i, after[j].Address, after[j], before[j])
			}
		}
		if r, ok := c.Remembered(as[5]); !ok || !reflect.DeepEqual(r, gone) {
			t.Fatalf("step %d: remembered %v is %+v (%v), was %+v", i, as[5], r, ok, gone)
		}
	}
	// The remembered state of as[5] comes back, not the new Initial.
	c.SetTargets(as)
	if tg := mustTarget(t, c, as[5]); tg.Status != Healthy || tg.Active != Healthy {
		t.Fatalf("a remembered target came back as %+v", tg)
	}
}
