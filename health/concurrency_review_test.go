package health

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Everything at once, under -race: reports, SetTargets churn, Update,
// SetProbeFilter, SetActive, readers, and Run started and stopped again
// and again, for a bounded time and count. Throughout, at most
// WithMaxProbes probes run at once, at most one per address, the ejection
// queue matches the ejected targets, and once Run has returned for the last
// time no probe is in flight and the goroutines are back to what they were.
func TestReviewEverythingAtOnce(t *testing.T) {
	const maxProbes = 4
	all := loopback(30, 24, "storm.test")
	pr := newScripted()
	pr.delay = 2 * time.Millisecond
	for i, a := range all {
		switch i % 4 {
		case 1:
			pr.set(a, ProbeHTTPFailure)
		case 2:
			pr.set(a, ProbeTimeout)
		}
	}
	cfg := fast("review-storm", 3*time.Millisecond)
	cfg.Active.Prober = pr
	cfg.Passive.Ejection = Ejection{Base: 5 * time.Millisecond, Max: 30 * time.Millisecond}
	cfg.Passive.Outlier = Outlier{Interval: 10 * time.Millisecond, MaxEjectionPercent: 50,
		FailurePercentage: &FailurePercentage{MinimumHosts: 2, RequestVolume: 3, Threshold: 40}}
	base := runtime.NumGoroutine()
	c := newChecker(t, cfg, nil, nil, WithMaxProbes(maxProbes))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var runs int
	wg.Go(func() {
		for ; runs < 200 && ctx.Err() == nil; runs++ {
			rc, stop := context.WithTimeout(ctx, time.Duration(3+runs%25)*time.Millisecond)
			if err := c.Run(rc); err != nil && !errors.Is(err, ErrRunning) {
				t.Errorf("Run: %v", err)
			}
			stop()
		}
	})
	wg.Go(func() { // a second Run while one runs is refused, never doubled
		for i := 0; i < 200 && ctx.Err() == nil; i++ {
			rc, stop := context.WithTimeout(ctx, time.Millisecond)
			if err := c.Run(rc); err != nil && !errors.Is(err, ErrRunning) {
				t.Errorf("Run: %v", err)
			}
			stop()
			time.Sleep(3 * time.Millisecond)
		}
	})
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 1))
		for i := 0; i < 3000 && ctx.Err() == nil; i++ {
			var set []resolver.Address
			for _, a := range all {
				if rng.IntN(4) > 0 {
					set = append(set, a)
				}
			}
			if rng.IntN(2) == 0 {
				rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
			}
			c.SetTargets(set)
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
		}
	})
	wg.Go(func() {
		paths := []string{"/a", "/b"}
		for i := 0; i < 500 && ctx.Err() == nil; i++ {
			u := c.Config()
			u.Active.Path = paths[i%2]
			u.Active.Healthy.Interval = time.Duration(2+i%4) * time.Millisecond
			u.Active.Unhealthy.Interval = time.Duration(2+i%3) * time.Millisecond
			if i%7 == 0 {
				u.Active.Unhealthy.Interval = -1
			}
			u.Passive.Unhealthy.TCPFailures = 1 + i%3
			u.Memory = 5 + i%10
			if err := c.Update(u); err != nil {
				t.Errorf("Update: %v", err)
			}
			time.Sleep(3 * time.Millisecond)
		}
	})
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(2, 2))
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			switch rng.IntN(3) {
			case 0:
				c.SetProbeFilter(nil)
			case 1:
				c.SetProbeFilter(func(a resolver.Address) bool { return a.IP.As4()[3]%2 == 0 })
			default:
				c.SetProbeFilter(func(a resolver.Address) bool { return a.IP.As4()[3]%3 != 0 })
			}
			a := all[rng.IntN(len(all))]
			c.SetActive(a, Status(1+rng.IntN(2)), "elsewhere")
			time.Sleep(2 * time.Millisecond)
		}
	})
	for g := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for i := 0; i < 50000 && ctx.Err() == nil; i++ {
				a := all[rng.IntN(len(all))]
				switch rng.IntN(6) {
				case 0:
					c.ReportTCPFailure(a)
				case 1:
					c.ReportTimeout(a)
				case 2:
					c.ReportHTTPStatus(a, 500)
				case 3:
					c.ReportRetryAfter(a, 429, 3*time.Millisecond)
				default:
					c.ReportSuccess(a)
				}
				if i%8 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}
	wg.Go(func() { // readers
		for i := 0; i < 5000 && ctx.Err() == nil; i++ {
			ch := c.Changed()
			_ = c.Healthy()
			_ = c.Targets()
			select {
			case <-ch:
			default:
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	peakInFlight := 0
	for ctx.Err() == nil {
		s := c.Stats()
		peakInFlight = max(peakInFlight, s.InFlight)
		if _, problem := ejectedInside(c); problem != "" {
			cancel()
			wg.Wait()
			t.Fatal(problem)
		}
		time.Sleep(500 * time.Microsecond)
	}
	wg.Wait()
	pr.mu.Lock()
	peak, peakAddr, calls := pr.peak, pr.peakAddr, len(pr.calls)
	pr.mu.Unlock()
	s := c.Stats()
	t.Logf("%d runs, %d probes started, %d completed, %d dropped; peak in flight %d (Stats %d), per address %d; %d addresses probed",
		runs, s.ProbesStarted, s.ProbesCompleted, s.ProbesDropped, peak, peakInFlight, peakAddr, calls)
	if s.ProbesStarted < 100 {
		t.Fatalf("only %d probes started", s.ProbesStarted)
	}
	if peak > maxProbes || peakInFlight > maxProbes {
		t.Errorf("%d probes ran at once (Stats: %d), WithMaxProbes(%d)", peak, peakInFlight, maxProbes)
	}
	if peakAddr > 1 {
		t.Errorf("%d probes of one address ran at once", peakAddr)
	}
	if s.InFlight != 0 {
		t.Errorf("%d probes in flight after Run returned", s.InFlight)
	}
	if _, problem := ejectedInside(c); problem != "" {
		t.Error(problem)
	}
	testutil.Eventually(t, 3*time.Second, "the goroutines to end with Run", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

// SetProbeFilter re-applies the selection at once: once it returns, no
// probe of a target it deselected starts, even one the scheduler had
// already taken off its queue. Checked by the probe hook (under the
// checker's lock) over 300 filter changes while 30 targets are probed
// every 2ms.
func TestReviewProbeFilterAppliesAtOnce(t *testing.T) {
	all := loopback(31, 30, "filter.test")
	var (
		mu         sync.Mutex
		excluded   func(resolver.Address) bool // what the last SetProbeFilter that returned left out
		violations []string
		starts     int
	)
	hook := func(tg *target) {
		mu.Lock()
		defer mu.Unlock()
		starts++
		if excluded != nil && excluded(tg.addr) {
			violations = append(violations, tg.addr.String())
		}
	}
	pr := newScripted()
	pr.delay = 500 * time.Microsecond
	cfg := fast("review-filter", 2*time.Millisecond)
	cfg.Active.Prober = pr
	c := newChecker(t, cfg, nil, hook, WithMaxProbes(6))
	c.SetTargets(all)
	start(t, c)
	rng := rand.New(rand.NewPCG(5, 6))
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		mod := uint8(2 + rng.IntN(3))
		rem := uint8(rng.IntN(int(mod)))
		keep := func(a resolver.Address) bool { return a.IP.As4()[3]%mod == rem }
		mu.Lock()
		excluded = nil // while the filter changes, any target may still start
		mu.Unlock()
		c.SetProbeFilter(keep)
		mu.Lock()
		excluded = func(a resolver.Address) bool { return !keep(a) }
		mu.Unlock()
		time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
	}
	mu.Lock()
	excluded = nil
	bad, n := append([]string(nil), violations...), starts
	mu.Unlock()
	t.Logf("%d probe starts", n)
	if n < 200 {
		t.Fatalf("only %d probes started", n)
	}
	if len(bad) > 0 {
		t.Fatalf("%d probes of deselected targets started after SetProbeFilter returned, e.g. %s", len(bad), bad[0])
	}
}
