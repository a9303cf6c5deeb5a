package health

import (
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
