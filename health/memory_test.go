package health

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// gated is a Prober whose probes pass once the test releases them; until
// then a probe holds, so a checker's first probe of a target does not end.
type gated struct {
	entered chan resolver.Address // each probe as it starts
	release chan struct{}         // closed: every probe passes
}

func newGated() *gated {
	return &gated{entered: make(chan resolver.Address, 64), release: make(chan struct{})}
}

func (g *gated) Probe(ctx context.Context, a resolver.Address) (ProbeOutcome, string) {
	select {
	case g.entered <- a:
	default:
	}
	select {
	case <-g.release:
		return ProbeSuccess, "released"
	case <-ctx.Done():
		return ProbeTimeout, "canceled"
	}
}

// await waits until a probe of a has started.
func (g *gated) await(t *testing.T, a resolver.Address) {
	t.Helper()
	for {
		select {
		case got := <-g.entered:
			if got.Key() == a.Key() {
				return
			}
		case <-time.After(time.Minute):
			t.Fatalf("no probe of %v started", a)
		}
	}
}

// R9: a checker given a Memory leaves its live targets' state in it when
// its Run returns, and the next checker of the same name given that Memory
// starts from it when the addresses arrive: before its first probe has
// ended (a Prober that holds until released), a target the first checker
// had found unhealthy (actively, or by a passive ejection with its
// deadline) is unhealthy, with its counters, reason, last probe and
// history, while a checker without that memory holds it healthy. The
// restored target is probed at once (R7). On a fake clock.
func TestMemoryOutlivesChecker(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sick  func(c *Checker, pr *scripted, a resolver.Address) // makes a unhealthy, with c running
		check func(t *testing.T, left, got Target)
	}{
		{"active", func(c *Checker, pr *scripted, a resolver.Address) {
			pr.set(a, ProbeHTTPFailure)
			time.Sleep(3 * time.Second) // probes every second; two failures
		}, func(t *testing.T, left, got Target) {
			if left.Active != Unhealthy || got.Active != Unhealthy || got.HTTPFailures != left.HTTPFailures {
				t.Fatalf("came back as %+v, left as %+v", got, left)
			}
		}},
		{"passive", func(c *Checker, pr *scripted, a resolver.Address) {
			for range 5 {
				c.ReportHTTPStatus(a, 500) // the passive threshold: an ejection of 30s
			}
		}, func(t *testing.T, left, got Target) {
			if left.Passive != Unhealthy || got.Passive != Unhealthy || !got.EjectedUntil.Equal(left.EjectedUntil) ||
				got.Ejections != 1 || got.PassiveCounts != left.PassiveCounts {
				t.Fatalf("came back as %+v, left as %+v", got, left)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := NewMemory(16)
				as := loopback(42, 2, "outlive.test")
				a := as[0]
				pr := newScripted()
				cfg := fast("outlive", time.Second)
				cfg.Active.Prober = pr
				cfg.Active.Timeout = time.Hour
				old := newChecker(t, cfg, nil, nil, WithMemory(m))
				old.SetTargets(as)
				stop := startStoppable(t, old)
				synctest.Wait()
				tc.sick(old, pr, a)
				synctest.Wait()
				left := mustTarget(t, old, a)
				if left.Status != Unhealthy {
					t.Fatalf("setup: %+v", left)
				}
				if m.Len() != 0 {
					t.Fatalf("%d remembered while the checker runs", m.Len())
				}
				stop()
				if n := m.Len(); n != 2 {
					t.Fatalf("%d targets left in memory by the stopped checker, want 2", n)
				}

				g := newGated()
				cfg.Active.Prober = g
				fresh := newChecker(t, cfg, nil, nil) // the same name, without the memory
				next := newChecker(t, cfg, nil, nil, WithMemory(m))
				start(t, next)
				start(t, fresh)
				fresh.SetTargets(as)
				next.SetTargets(as)
				g.await(t, a) // probed at once
				synctest.Wait()
				got := mustTarget(t, next, a)
				if got.Status != Unhealthy || got.Reason != left.Reason || got.Probe != left.Probe ||
					!reflect.DeepEqual(got.History, left.History) {
					t.Fatalf("before its first probe ended a was %+v; left as %+v", got, left)
				}
				tc.check(t, left, got)
				if s := next.Stats(); s.ProbesCompleted != 0 || s.ProbesStarted == 0 {
					t.Fatalf("stats %+v: the restored state is not from before the first probe", s)
				}
				if s := fresh.Status(a); s != Healthy {
					t.Fatalf("a checker without the memory holds a as %v: the test shows nothing", s)
				}
				if n := m.Len(); n != 0 {
					t.Fatalf("%d still remembered after both targets returned", n)
				}
				close(g.release)
			})
		})
	}
}

// A restored ejection whose deadline passed while no checker held the
// name ends at the restoring checker's next tick, and the target is on
// probation.
func TestRestoredEjectionEndedMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(16)
		a := loopback(43, 1, "meanwhile.test")[0]
		cfg := passiveOnly("meanwhile")
		old := newChecker(t, cfg, nil, nil, WithMemory(m))
		old.SetTargets([]resolver.Address{a})
		stop := startStoppable(t, old)
		old.ReportTCPFailure(a)
		old.ReportTCPFailure(a)
		until := mustTarget(t, old, a).EjectedUntil
		stop()
		time.Sleep(time.Until(until) + time.Second)

		next := newChecker(t, cfg, nil, nil, WithMemory(m))
		next.SetTargets([]resolver.Address{a})
		if tg := mustTarget(t, next, a); tg.Passive != Unhealthy || !tg.EjectedUntil.Equal(until) {
			t.Fatalf("restored as %+v, want the ejection until %v", tg, until)
		}
		start(t, next)
		synctest.Wait()
		if tg := mustTarget(t, next, a); tg.Passive != Healthy || !tg.Probation || tg.Reason != "ejection over" {
			t.Fatalf("at the next tick: %+v; want the ejection over, on probation", tg)
		}
	})
}

// Two checkers of different names sharing a Memory never take each
// other's state (STYLE rule 10): an address one of them ejected and left
// in memory comes to the other as a new target, and only a checker of the
// first name gets the ejection back.
func TestMemoryKeepsNamesApart(t *testing.T) {
	m := NewMemory(16)
	as := loopback(44, 2, "apart.test")
	a := as[0]
	one := newChecker(t, passiveOnly("one"), nil, nil, WithMemory(m))
	one.SetTargets(as)
	one.ReportTCPFailure(a)
	one.ReportTCPFailure(a)
	stop := startStoppable(t, one)
	stop() // leaves a and b, under "one"
	if n := m.Len(); n != 2 {
		t.Fatalf("%d remembered, want 2", n)
	}
	two := newChecker(t, passiveOnly("two"), nil, nil, WithMemory(m))
	if _, ok := two.Remembered(a); ok || two.Stats().Remembered != 0 || len(two.RememberedTargets()) != 0 {
		t.Fatal("another name sees the state")
	}
	two.SetTargets(as)
	if tg := mustTarget(t, two, a); tg.Status != Healthy || tg.PassiveCounts != (Counters{}) || len(tg.History) != 0 {
		t.Fatalf("another name took the state: %+v", tg)
	}
	if n := m.Len(); n != 2 {
		t.Fatalf("another name took entries: %d remembered, want 2", n)
	}
	again := newChecker(t, passiveOnly("one"), nil, nil, WithMemory(m))
	if n := again.Stats().Remembered; n != 2 {
		t.Fatalf("Stats().Remembered = %d for the name, want 2", n)
	}
	again.SetTargets(as)
	if tg := mustTarget(t, again, a); tg.Passive != Unhealthy || tg.PassiveCounts.TCPFailures != 2 {
		t.Fatalf("the same name did not get the state back: %+v", tg)
	}
}

// A full Memory forgets the least recently departed target first, across
// every name that uses it; peeking (Remembered) does not make an entry
// recent. Config.Memory does not size a shared Memory, nor does Update.
func TestMemoryForgetsLeastRecentlyDeparted(t *testing.T) {
	m := NewMemory(3)
	cfg := passiveOnly("lru")
	cfg.Memory = 1 // not the shared memory's size
	c := newChecker(t, cfg, nil, nil, WithMemory(m))
	as := loopback(45, 6, "lru.test")
	c.SetTargets(as[:5])
	for i := range 5 { // as[0] leaves first, as[4] last
		c.SetTargets(as[i+1 : 5])
	}
	remembered := func(c *Checker) []resolver.Address { return addrsOf(c.RememberedTargets()) }
	if got, want := remembered(c), as[2:5]; !slices.Equal(got, want) || m.Len() != 3 {
		t.Fatalf("remembered %v (%d in all), want %v", got, m.Len(), want)
	}
	if _, ok := c.Remembered(as[2]); !ok { // a peek: as[2] stays the least recent
		t.Fatal("as[2] is not remembered")
	}
	u := c.Config()
	u.Memory = 2
	if err := c.Update(u); err != nil {
		t.Fatal(err)
	}
	other := newChecker(t, passiveOnly("lru-other"), nil, nil, WithMemory(m))
	other.SetTargets(as[5:])
	other.SetTargets(nil) // another name's departure evicts as[2]
	if got, want := remembered(c), as[3:5]; !slices.Equal(got, want) {
		t.Fatalf("remembered %v, want %v", got, want)
	}
	if got := remembered(other); !slices.Equal(got, as[5:]) {
		t.Fatalf("the other name remembers %v", got)
	}
	if d := NewMemory(0); d.lru.Resize(DefaultMemory) != 0 || d.Len() != 0 {
		t.Fatal("NewMemory(0) is not of DefaultMemory entries")
	}
}

// A Memory forgets a departed target after MaxMemoryAge: the address comes
// back as a new target. On a fake clock.
func TestMemoryForgetsAfterMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(8)
		as := loopback(46, 2, "age.test")
		c := newChecker(t, passiveOnly("age"), nil, nil, WithMemory(m))
		c.SetTargets(as)
		for _, a := range as {
			c.ReportTCPFailure(a)
			c.ReportTCPFailure(a)
		}
		c.SetTargets(as[1:])
		time.Sleep(MaxMemoryAge / 2)
		c.SetTargets(nil)
		time.Sleep(MaxMemoryAge/2 - time.Nanosecond)
		if n := m.Len(); n != 2 {
			t.Fatalf("%d remembered just before the first is an hour old, want 2", n)
		}
		time.Sleep(time.Nanosecond)
		if _, ok := c.Remembered(as[0]); ok || m.Len() != 1 {
			t.Fatalf("remembered after MaxMemoryAge (%d in all)", m.Len())
		}
		c.SetTargets(as)
		if tg := mustTarget(t, c, as[0]); tg.Status != Healthy || tg.PassiveCounts != (Counters{}) {
			t.Fatalf("came back after MaxMemoryAge as %+v", tg)
		}
		if tg := mustTarget(t, c, as[1]); tg.PassiveCounts.TCPFailures != 2 || tg.Ejections != 1 {
			t.Fatalf("came back within MaxMemoryAge as %+v", tg)
		}
		startStoppable(t, c)() // what a stopped checker leaves ages alike
		if n := m.Len(); n != 2 {
			t.Fatalf("%d remembered after Run returned, want 2", n)
		}
		time.Sleep(MaxMemoryAge)
		if n := m.Len(); n != 0 || len(c.RememberedTargets()) != 0 {
			t.Fatalf("%d remembered after MaxMemoryAge", n)
		}
	})
}

// A checker's own memory keeps only departed targets: when its Run
// returns, its live targets stay its own.
func TestOwnMemoryKeepsOnlyDeparted(t *testing.T) {
	c := newChecker(t, passiveOnly("own"), nil, nil)
	as := loopback(47, 2, "own.test")
	c.SetTargets(as)
	stop := startStoppable(t, c)
	stop()
	if n := c.Stats().Remembered; n != 0 {
		t.Fatalf("%d remembered after Run returned, want 0", n)
	}
	c.SetTargets(as[1:])
	if n := c.Stats().Remembered; n != 1 {
		t.Fatalf("%d remembered after one left, want 1", n)
	}
}

// Checkers of several names share one Memory while they churn, report
// and stop, from several goroutines: -race finds what a lock misses, and
// the Memory never holds more than its size.
func TestMemorySharedConcurrently(t *testing.T) {
	m := NewMemory(20)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			name := []string{"left", "right"}[g%2]
			as := loopback(48+g%2, 16, name+".test")
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for round := range 20 {
				c, err := NewChecker(passiveOnly(name), nil, WithMemory(m))
				if err != nil {
					t.Error(err)
					return
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- c.Run(ctx) }()
				for i := range 50 {
					var set []resolver.Address
					for _, a := range as {
						if rng.IntN(2) == 0 {
							set = append(set, a)
						}
					}
					c.SetTargets(set)
					c.ReportTCPFailure(as[(i+round)%len(as)])
					_ = c.RememberedTargets()
				}
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
				if n := m.Len(); n > 20 {
					t.Errorf("%d remembered, size 20", n)
				}
			}
		})
	}
	wg.Wait()
}

// What a stopping checker leaves counts towards the Memory's size with
// every other departure, and the least recently departed goes first. A
// later checker of the name that stops leaves its own targets along with
// those of the first that it never took back.
func TestMemoryBoundsWhatStoppedCheckersLeave(t *testing.T) {
	m := NewMemory(4)
	as := loopback(49, 6, "bound.test")
	stopped := func(c *Checker) {
		t.Helper()
		startStoppable(t, c)()
	}
	first := newChecker(t, passiveOnly("bound"), nil, nil, WithMemory(m))
	first.SetTargets(as[:3])
	first.ReportTCPFailure(as[1])
	stopped(first) // leaves as[0:3]
	other := newChecker(t, passiveOnly("bound-other"), nil, nil, WithMemory(m))
	other.SetTargets(as[3:5])
	other.SetTargets(as[4:5]) // as[3] departs: 4 remembered
	other.SetTargets(nil)     // as[4] departs: one of the first checker's three goes
	if n := m.Len(); n != 4 {
		t.Fatalf("%d remembered, size 4", n)
	}
	if got := addrsOf(other.RememberedTargets()); !slices.Equal(got, as[3:5]) {
		t.Fatalf("the other name remembers %v, want %v", got, as[3:5])
	}
	if n := len(first.RememberedTargets()); n != 2 {
		t.Fatalf("%d of the stopped checker's targets remembered, want 2", n)
	}

	second := newChecker(t, passiveOnly("bound"), nil, nil, WithMemory(m))
	second.SetTargets(as[5:]) // a new address; none of the first's
	stopped(second)           // leaves as[5] and the first's two: 5, so as[3] goes
	if got := addrsOf(other.RememberedTargets()); !slices.Equal(got, as[4:5]) {
		t.Fatalf("the other name remembers %v, want %v", got, as[4:5])
	}
	third := newChecker(t, passiveOnly("bound"), nil, nil, WithMemory(m))
	kept := addrsOf(third.RememberedTargets())
	if len(kept) != 3 || kept[2] != as[5] {
		t.Fatalf("the name remembers %v, want two of %v and %v", kept, as[:3], as[5])
	}
	third.SetTargets(as)
	for _, a := range kept {
		if tg := mustTarget(t, third, a); a == as[1] && tg.PassiveCounts.TCPFailures != 1 {
			t.Fatalf("%v came back as %+v", a, tg)
		}
	}
	if n := third.Stats().Remembered; n != 0 {
		t.Fatalf("%d remembered after every address came back", n)
	}
}
