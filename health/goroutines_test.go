package health

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// An idle checker costs its Run goroutine, whatever WithMaxProbes says:
// probe goroutines start on demand and end with their probe, and the
// connection each target keeps between probes costs no goroutine on the
// checker's side (net/http's pooled connections hold two each). The
// backends' server goroutines, one per open connection, are counted apart.
func TestIdleCheckerCostsOneGoroutine(t *testing.T) {
	bs := backends(t, "127.0.73.1", 10, nil)
	var as []resolver.Address
	for _, b := range bs {
		as = append(as, b.Address("idle.test"))
	}
	base := runtime.NumGoroutine()
	const checkers = 5
	var cs []*Checker
	for range checkers {
		cfg := fast("idle", time.Hour) // one probe per target, then nothing for an hour
		c := newChecker(t, cfg, nil, nil, WithMaxProbes(10000))
		c.SetTargets(as)
		start(t, c)
		cs = append(cs, c)
	}
	testutil.Eventually(t, 5*time.Second, "every first probe to complete", func() bool {
		for _, c := range cs {
			if c.Stats().ProbesCompleted < uint64(len(as)) {
				return false
			}
		}
		return true
	})
	open := func() (n int) {
		for _, b := range bs {
			n += int(b.OpenConns())
		}
		return n
	}
	testutil.Eventually(t, 5*time.Second, "goroutines to settle", func() bool {
		return runtime.NumGoroutine() <= base+checkers+open()
	})
	if n := open(); n != checkers*len(as) {
		t.Fatalf("%d probe connections open, want one kept per target (%d)", n, checkers*len(as))
	}
}

// Probes run concurrently, at most WithMaxProbes at once: the peak overlap
// of the probes' [start, start+duration] intervals is between 2 and 3.
func TestMaxProbesBoundsConcurrency(t *testing.T) {
	bs := backends(t, "127.0.73.20", 8, nil)
	var as []resolver.Address
	for _, b := range bs {
		b.SetMode(backendtest.Slow)
		b.SetDelay(100 * time.Millisecond)
		as = append(as, b.Address(""))
	}
	starts := newProbeLog()
	bus := newBus(t)
	var mu sync.Mutex
	var results []ProbeResult
	defer events.Subscribe(bus, ProbeTopic("max"), func(r ProbeResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})()
	c := newChecker(t, fast("max", time.Hour), bus, starts.hook, WithMaxProbes(3))
	c.SetTargets(as)
	start(t, c)
	testutil.Eventually(t, 5*time.Second, "every target probed once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) == len(as)
	})
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range results {
		s := starts.of(r.Address)[0]
		edges = append(edges, edge{s, 1}, edge{s.Add(r.Duration), -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same instant
	})
	n, peak := 0, 0
	for _, e := range edges {
		n += e.delta
		peak = max(peak, n)
	}
	if peak < 2 || peak > 3 {
		t.Fatalf("at most %d probes overlapped, want 2 or 3 (WithMaxProbes(3))", peak)
	}
}

// The ejection queue never holds a removed target and Stats().Ejected is
// always the number of live targets whose passive verdict is an ejection,
// while reports, target churn, Update and Run restarts race.
func TestEjectionQueueUnderChurn(t *testing.T) {
	cfg := passiveOnly("ejq")
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

// Everything at once, under -race: reports, SetTargets churn, Update,
// SetProbeFilter, SetActive, readers, and Run started and stopped again
// and again, for a bounded time and count. Throughout, at most
// WithMaxProbes probes run at once, at most one per address, the ejection
// queue matches the ejected targets, and once Run has returned for the last
// time no probe is in flight and the goroutines are back to what they were.
func TestEverythingAtOnce(t *testing.T) {
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
	cfg := fast("storm", 3*time.Millisecond)
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
