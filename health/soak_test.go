package health_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/resolver"
)

// soakDuration is how long TestSoak churns: VIGIL_SOAK (for example
// VIGIL_SOAK=60s), else a few seconds.
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("VIGIL_SOAK")
	if s == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("VIGIL_SOAK=%q: want a positive duration such as 60s", s)
	}
	return d
}

// The churn soak: 1,000 loopback HTTP backends, 1,000 target-set changes a
// second through the bus (with stale ones mixed in), backends switching
// health, passive reports and pickers running, while the checker probes.
// Sentinel targets whose backends always fail are churned in and out like
// the others: once unhealthy they must never be seen healthy again and their
// failure counter must never go down, live or remembered (a checker that is
// destroyed and rebuilt on changes fails both). The final target set must be
// the last one published. After Run returns, goroutines and heap go back to
// where they were.
//
// The default run is short; VIGIL_SOAK=60s runs the long one:
//
//	VIGIL_SOAK=60s go test -race -run '^TestSoak$' -v -timeout 10m ./health/
func TestSoak(t *testing.T) {
	const (
		n         = 1000
		sentinels = 50
		rate      = 1000 // changes a second
		toggles   = 5    // addresses entering or leaving per change
		iv        = time.Second
	)
	dur := soakDuration(t)
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.64.1"), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	universe := make([]resolver.Address, n)
	byKey := map[resolver.Address]*backendtest.Backend{}
	for i, b := range bs {
		universe[i] = b.Address("soak.test")
		byKey[universe[i]] = b
	}
	resolver.Sort(universe)
	sentinel := map[resolver.Address]bool{}
	for _, a := range universe[:sentinels] {
		sentinel[a] = true
		byKey[a].SetStatus(500)
	}
	flippers := universe[sentinels:]

	bus := events.New()
	t.Cleanup(bus.Close)

	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc

	cfg := health.Config{
		Name: "soak",
		Active: health.Active{
			Timeout:   2 * time.Second,
			Healthy:   health.HealthyRules{Interval: iv, Successes: 2},
			Unhealthy: health.UnhealthyRules{Interval: iv, HTTPFailures: 2, TCPFailures: 3, Timeouts: 3},
		},
	}
	c, err := health.NewChecker(cfg, bus)
	if err != nil {
		t.Fatal(err)
	}
	bal := balancer.New(c)

	var (
		violations  atomic.Int64
		firstIssue  atomic.Pointer[string]
		toHealthy   atomic.Int64
		reports     atomic.Int64
		flips       atomic.Int64
		picks       atomic.Int64
		maxHeap     atomic.Uint64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		unhealthyAt sync.Map // sentinel -> struct{}: seen unhealthy
	)
	fail := func(msg string) {
		if violations.Add(1) == 1 {
			firstIssue.Store(&msg)
		}
	}
	unsub := events.Subscribe(bus, health.StatusTopic("soak"), func(e health.StatusChange) {
		if sentinel[e.Address] && e.To == health.Healthy {
			toHealthy.Add(1)
			fail("a sentinel turned healthy: " + e.Address.String())
		}
	})
	defer unsub()

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	// Everything in the first set, so that sentinels get probed unhealthy.
	in := make([]bool, n)
	for i := range in {
		in[i] = true
	}
	version := uint64(1)
	events.Publish(bus, resolver.Topic("soak"), resolver.Change{Name: "soak", Version: version, Addresses: slices.Clone(universe)})

	// Sentinel watcher: once unhealthy, always unhealthy; failures only grow.
	wg.Go(func() {
		lastFails := map[resolver.Address]int{}
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, a := range universe[:sentinels] {
				tg, ok := c.Target(a)
				if !ok {
					tg, ok = c.Remembered(a)
				}
				if !ok {
					continue
				}
				if tg.HTTPFailures < lastFails[a] {
					fail("a sentinel's failures went down: " + a.String())
				}
				lastFails[a] = tg.HTTPFailures
				_, was := unhealthyAt.Load(a)
				switch {
				case tg.Status == health.Unhealthy:
					unhealthyAt.Store(a, struct{}{})
				case was:
					fail("a sentinel is " + tg.Status.String() + " again: " + a.String())
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	// Backends switching health.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(3, 4))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 20 {
				b := byKey[flippers[rng.IntN(len(flippers))]]
				if rng.IntN(2) == 0 {
					b.SetStatus(200)
				} else {
					b.SetStatus(503)
				}
				flips.Add(1)
			}
		}
	})
	// Passive reports on the non-sentinels.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 50 {
				a := flippers[rng.IntN(len(flippers))]
				switch rng.IntN(4) {
				case 0:
					c.ReportSuccess(a)
				case 1:
					c.ReportHTTPStatus(a, 503)
				case 2:
					c.ReportTCPFailure(a)
				default:
					c.ReportHTTPStatus(a, 200)
				}
				reports.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Pickers and readers.
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 100 {
					if _, err := bal.Pick(); err != nil && !errors.Is(err, balancer.ErrNoHealthy) {
						fail("Pick: " + err.Error())
					}
				}
				picks.Add(100)
				_ = c.Healthy()
				_ = c.Status(universe[0])
				time.Sleep(time.Millisecond)
			}
		})
	}
	// Heap sampler.
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > maxHeap.Load() {
				maxHeap.Store(ms.HeapAlloc)
			}
		}
	})

	// Let the first probes find the sentinels unhealthy before churning.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, a := range universe[:sentinels] {
			if c.Status(a) != health.Unhealthy {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Churn: rate changes a second for dur, bounded in count and time.
	rng := rand.New(rand.NewPCG(1, 2))
	began := time.Now()
	total := int(dur.Seconds() * rate)
	stale := 0
	published := 0
	var set []resolver.Address
	for i := 0; i < total && time.Since(began) < dur+5*time.Second; i++ {
		for range toggles {
			j := rng.IntN(n)
			in[j] = !in[j]
		}
		set = set[:0]
		for j, a := range universe {
			if in[j] {
				set = append(set, a)
			}
		}
		version++
		events.Publish(bus, resolver.Topic("soak"), resolver.Change{Name: "soak", Version: version, Addresses: slices.Clone(set)})
		published++
		if i%50 == 49 { // a stale Change that would drop every sentinel: must be ignored
			events.Publish(bus, resolver.Topic("soak"), resolver.Change{Name: "soak", Version: version - 3, Addresses: flippers[:10]})
			stale++
		}
		if ahead := time.Until(began.Add(time.Duration(i+1) * time.Second / rate)); ahead > time.Millisecond {
			time.Sleep(ahead)
		}
	}
	churn := time.Since(began)
	// One last fresh Change, so that the final set is known whatever the
	// bus skipped.
	version++
	final := slices.Clone(set)
	events.Publish(bus, resolver.Topic("soak"), resolver.Change{Name: "soak", Version: version, Addresses: final})
	deadline = time.Now().Add(10 * time.Second)
	for c.Stats().Version != version && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	stats := c.Stats()

	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}

	if stats.Version != version {
		t.Fatalf("applied version %d, want %d", stats.Version, version)
	}
	targets := c.Targets()
	got := make([]resolver.Address, len(targets))
	for i, tg := range targets {
		got[i] = tg.Address
	}
	if !slices.Equal(got, final) {
		t.Fatalf("final targets: %d, want %d", len(got), len(final))
	}
	for _, a := range universe[:sentinels] {
		if _, was := unhealthyAt.Load(a); !was {
			continue
		}
		tg, ok := c.Target(a)
		if !ok {
			tg, ok = c.Remembered(a)
		}
		if !ok || tg.Status != health.Unhealthy {
			fail("a sentinel ends " + tg.Status.String() + ": " + a.String())
		}
	}
	seen := 0
	unhealthyAt.Range(func(any, any) bool { seen++; return true })
	if seen < sentinels*9/10 {
		t.Fatalf("only %d of %d sentinels were seen unhealthy", seen, sentinels)
	}

	// Back to baseline: goroutines once the backends have noticed the closed
	// probe connections, heap once the checker is gone.
	unsub()
	deadline = time.Now().Add(10 * time.Second)
	goroutines := runtime.NumGoroutine()
	for goroutines > baseGoroutines+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		goroutines = runtime.NumGoroutine()
	}
	runtime.KeepAlive(bal)
	c, bal = nil, nil // the checker and the balancer are garbage now
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	endHeap := ms.HeapAlloc

	t.Logf("soak %v (churn %v): %d changes published (%d/s), %d stale; checker applied %d, ignored %d",
		dur, churn.Round(time.Millisecond), published, int(float64(published)/churn.Seconds()), stale,
		stats.ChangesApplied, stats.ChangesIgnored)
	t.Logf("probes started %d, completed %d, dropped %d; transitions %d; %d reports, %d backend flips, %d picks",
		stats.ProbesStarted, stats.ProbesCompleted, stats.ProbesDropped, stats.Transitions,
		reports.Load(), flips.Load(), picks.Load())
	t.Logf("final targets %d, remembered %d; sentinels seen unhealthy %d/%d, turned healthy %d",
		stats.Targets, stats.Remembered, seen, sentinels, toHealthy.Load())
	t.Logf("heap: base %.1f MiB, max %.1f MiB, end %.1f MiB; goroutines: base %d, end %d",
		mib(baseHeap), mib(maxHeap.Load()), mib(endHeap), baseGoroutines, goroutines)

	if v := violations.Load(); v > 0 {
		t.Fatalf("%d violations; first: %s", v, *firstIssue.Load())
	}
	if goroutines > baseGoroutines+2 {
		t.Fatalf("goroutines: %d after Run, %d before", goroutines, baseGoroutines)
	}
	if endHeap > baseHeap+16<<20 {
		t.Fatalf("heap: %.1f MiB after, %.1f MiB before", mib(endHeap), mib(baseHeap))
	}
	if stats.ChangesApplied < 2 || stats.ProbesStarted == 0 || stats.Transitions == 0 {
		t.Fatalf("nothing happened: %+v", stats)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
