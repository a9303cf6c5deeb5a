package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

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

// MaxEjectionPercent is never exceeded while every target fails at once,
// reported from many goroutines, with threshold ejections, Retry-After
// ejections and outlier detection all ejecting: at every moment at most
// max(1, n·pct/100) live targets are ejected, and Stats().Ejected agrees.
func TestMaxEjectionPercentUnderLoad(t *testing.T) {
	const n, pct = 20, 20
	limit := max(1, n*pct/100)
	cfg := passiveOnly("cap")
	cfg.Passive.Ejection = Ejection{Base: 40 * time.Millisecond, Max: 200 * time.Millisecond}
	cfg.Passive.Outlier = Outlier{Interval: 20 * time.Millisecond, MaxEjectionPercent: pct,
		SuccessRate:       &SuccessRate{MinimumHosts: 2, RequestVolume: 2, StdevFactor: 0.1},
		FailurePercentage: &FailurePercentage{Threshold: 10, MinimumHosts: 1, RequestVolume: 2}}
	bus := newBus(t)
	var kinds sync.Map // reason kind -> true
	defer events.Subscribe(bus, StatusTopic("cap"), func(e StatusChange) {
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
func TestMaxEjectionPercentReturningTarget(t *testing.T) {
	cfg := passiveOnly("cap-back")
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

// Targets whose success rates are all the same are no outliers, whatever
// StdevFactor (any finite value ≥ 0 is valid): with 5 targets at 92% and a
// factor of 0.5, rounding puts the mean a hair above 92% and the standard
// deviation a hair above 0, and no target may be ejected for that.
func TestEqualSuccessRatesAreNoOutliers(t *testing.T) {
	cfg := passiveOnly("equal")
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
func TestFailurePercentageAtThreshold(t *testing.T) {
	for _, tc := range []struct{ failed, total, threshold int }{{3, 10, 30}, {1, 20, 5}, {11, 20, 55}, {14, 25, 56}} {
		t.Run(fmt.Sprintf("%d of %d at %d%%", tc.failed, tc.total, tc.threshold), func(t *testing.T) {
			name := fmt.Sprintf("fp-%d-%d", tc.failed, tc.total)
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
func TestOutlierDetectionTurnedOnByUpdate(t *testing.T) {
	cfg := passiveOnly("outlier-on")
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

// health.Zero gives 0 its Envoy and A50 meaning: MaxEjectionPercent Zero
// is detect only (outliers are found and counted, and no passive verdict
// ejects, not even a failure threshold or a Retry-After), and
// EnforcementPercentage Zero finds and counts that algorithm's outliers
// without ejecting them, while the default of 0 (100) ejects.
func TestZeroDetectsWithoutEjecting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outlier Outlier
		ejected int // the outlier, then a target at its failure threshold and a Retry-After
	}{
		{"MaxEjectionPercent Zero", Outlier{MaxEjectionPercent: Zero,
			FailurePercentage: &FailurePercentage{Threshold: 40, MinimumHosts: 1, RequestVolume: 20}}, 0},
		{"EnforcementPercentage Zero", Outlier{MaxEjectionPercent: 100,
			FailurePercentage: &FailurePercentage{Threshold: 40, MinimumHosts: 1, RequestVolume: 20, EnforcementPercentage: Zero}}, 2},
		{"EnforcementPercentage 0: the default", Outlier{MaxEjectionPercent: 100,
			FailurePercentage: &FailurePercentage{Threshold: 40, MinimumHosts: 1, RequestVolume: 20}}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := passiveOnly("zero")
				cfg.Passive.Unhealthy = UnhealthyRules{HTTPFailures: 1000, TCPFailures: 2, Timeouts: 1000}
				cfg.Passive.Outlier = tc.outlier
				cfg.Passive.Outlier.Interval = 10 * time.Second
				c := newChecker(t, cfg, nil, nil)
				as := loopback(25, 4, "zero.test")
				c.SetTargets(as)
				start(t, c)
				for i := range 40 {
					for j, a := range as {
						if j == 0 && i%2 == 0 {
							c.ReportHTTPStatus(a, 500) // half its requests fail: an outlier
						} else {
							c.ReportSuccess(a)
						}
					}
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if s := c.Stats(); s.OutlierEvaluations != 1 || s.OutliersDetected != 1 {
					t.Fatalf("stats %+v; want one evaluation, one outlier found", s)
				}
				c.ReportTCPFailure(as[1])
				c.ReportTCPFailure(as[1])
				c.ReportRetryAfter(as[2], 503, time.Minute)
				if n := c.Stats().Ejected; n != tc.ejected {
					t.Fatalf("%d ejected, want %d", n, tc.ejected)
				}
			})
		})
	}
}
