package health

import (
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// R3 under the verdict model: a target that returns gets both verdicts,
// both sets of counters and its ejection back before its first probe runs,
// also when that probe would change them.
func TestReturningTargetGetsVerdictsBeforeProbe(t *testing.T) {
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
	cfg := fast("back", 30*time.Millisecond)
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
	got.Departed = mem.Departed   // what only a remembered target has
	if !reflect.DeepEqual(got, mem) {
		t.Fatalf("at its first probe after returning a was\n %+v\nremembered\n %+v", got, mem)
	}
}

// A node removed and re-added while remembered comes back with its old status
// and counters before any new probe runs (R3); past the memory's size it is
// forgotten.
func TestReturningTargetGetsStateBack(t *testing.T) {
	bs := backends(t, "127.0.3.1", 3, nil)
	a, b, other := bs[0].Address("a.test"), bs[1].Address("b.test"), bs[2].Address("x.test")
	bs[0].SetStatus(500)
	var readded atomic.Bool
	var mu sync.Mutex
	var firstAfter *Target
	cfg := fast("up3", 20*time.Millisecond)
	cfg.Active.Healthy.Successes = 3
	cfg.Memory = 1
	c := newChecker(t, cfg, nil, func(tg *target) {
		if readded.Load() && tg.addr.Key() == a.Key() {
			mu.Lock()
			if firstAfter == nil {
				s := tg.snapshot()
				firstAfter = &s
			}
			mu.Unlock()
		}
	})
	start(t, c)
	c.SetTargets([]resolver.Address{a, b})
	testutil.Eventually(t, 3*time.Second, "a to turn unhealthy", func() bool { tg, _ := c.Target(a); return tg.Status == Unhealthy && tg.HTTPFailures >= 3 })

	c.SetTargets([]resolver.Address{b})
	gone, ok := c.Remembered(a)
	if !ok || gone.Status != Unhealthy {
		t.Fatalf("a not remembered unhealthy: %+v", gone)
	}
	bs[0].SetStatus(200) // a new probe would now count a success
	readded.Store(true)
	c.SetTargets([]resolver.Address{a, b})
	// Its immediate probe may already have counted a success, but one success
	// cannot heal it (Successes is 3): its status and LastChange are the
	// remembered ones. The counters are checked as the first probe saw them.
	back, _ := c.Target(a)
	if back.Status != Unhealthy || !back.LastChange.Equal(gone.LastChange) {
		t.Fatalf("a came back as %+v, was %+v", back, gone)
	}
	testutil.Eventually(t, 3*time.Second, "a's first probe after its return", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstAfter != nil
	})
	mu.Lock()
	fa := *firstAfter
	mu.Unlock()
	if fa.Status != Unhealthy || fa.HTTPFailures != gone.HTTPFailures || fa.Successes != 0 {
		t.Fatalf("before its first probe a was %+v, want the remembered %+v", fa, gone)
	}
	testutil.Eventually(t, 3*time.Second, "a to recover", func() bool { return c.Status(a) == Healthy })

	// Memory holds one departed target: a is pushed out by other.
	bs[0].SetStatus(500)
	testutil.Eventually(t, 3*time.Second, "a unhealthy again", func() bool { return c.Status(a) == Unhealthy })
	c.SetTargets([]resolver.Address{b, other})
	c.SetTargets([]resolver.Address{b})
	if _, ok := c.Remembered(a); ok {
		t.Fatal("a still remembered beyond the memory size")
	}
	c.SetTargets([]resolver.Address{a, b})
	// Its immediate probe may already have failed once; two failures are needed.
	if tg, _ := c.Target(a); tg.Status != Healthy || tg.HTTPFailures > 1 {
		t.Fatalf("forgotten a came back as %+v, want a new healthy target", tg)
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
