package health

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A node detected unhealthy stays unhealthy, without a single flicker, while
// nodes are added through the bus (R1).
func TestUnhealthyStaysUnhealthyWhileNodesAdded(t *testing.T) {
	bs := backends(t, "127.0.1.1", 6, nil)
	bs[0].SetStatus(500)
	bad := bs[0].Address("bad.test")
	bus := newBus(t)
	log := recordEvents(t, bus, "up1")
	c := newChecker(t, fast("up1", 20*time.Millisecond), bus, nil)
	start(t, c)

	set := []resolver.Address{bad, bs[1].Address("ok.test")}
	publish(t, bus, c, 1, set...)
	testutil.Eventually(t, 3*time.Second, "bad to turn unhealthy", func() bool { return c.Status(bad) == Unhealthy })

	var flickers atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.Status(bad) != Unhealthy {
				flickers.Add(1)
			}
		}
	})
	before, _ := c.Target(bad)
	for i := 2; i < len(bs); i++ {
		set = append(set, bs[i].Address("ok.test"))
		publish(t, bus, c, uint64(i), set...)
		tg, ok := c.Target(bad)
		if !ok || tg.Status != Unhealthy || tg.LastChange != before.LastChange || tg.HTTPFailures < before.HTTPFailures {
			t.Fatalf("after adding node %d: bad is %+v, was %+v", i, tg, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := flickers.Load(); n > 0 {
		t.Fatalf("bad was seen not unhealthy %d times", n)
	}
	if evs := log.to(bad, Healthy); len(evs) > 0 {
		t.Fatalf("bad turned healthy: %v", evs)
	}
	testutil.Eventually(t, 3*time.Second, "added nodes to be probed healthy", func() bool {
		return len(c.Healthy()) == len(bs)-1
	})
}

// Targets in both sets are untouched by a reconcile: same state, same
// next-probe time, same queue position, no extra probe (R1).
func TestReconcileLeavesKeptTargetsAlone(t *testing.T) {
	c := newChecker(t, fast("up1b", time.Second), nil, nil)
	bs := backends(t, "127.0.1.20", 3, nil)
	a, b, n := bs[0].Address(""), bs[1].Address(""), bs[2].Address("")
	c.SetTargets([]resolver.Address{a, b})
	c.ReportTCPFailure(a)
	c.mu.Lock()
	ta := c.targets[a.Key()]
	ta.next = time.Now().Add(time.Hour) // a fixed point in the schedule
	c.enqueue(ta, ta.next)
	beforeState, beforeNext := ta.state, ta.next
	c.reconcile([]resolver.Address{a, n}, time.Now())
	if c.targets[a.Key()] != ta || ta.state != beforeState || !ta.next.Equal(beforeNext) || ta.index < 0 {
		t.Fatalf("kept target changed: %+v", ta)
	}
	if _, ok := c.targets[b.Key()]; ok {
		t.Fatal("removed target still there")
	}
	tn := c.targets[n.Key()]
	if tn == nil || tn.index != 0 || tn.next.After(time.Now()) {
		t.Fatal("new target not queued for an immediate probe (R7)")
	}
	c.mu.Unlock()
}

// A removed node disappears from Targets() and no probe of it starts after
// its removal is applied (R2); its state moves to memory and the remaining
// targets keep their counters.
func TestRemovedTargetStopsAtOnce(t *testing.T) {
	bs := backends(t, "127.0.2.1", 3, nil)
	a, b, cc := bs[0].Address("a.test"), bs[1].Address("b.test"), bs[2].Address("c.test")
	var removed atomic.Bool
	var late atomic.Int64
	c := newChecker(t, fast("up2", 20*time.Millisecond), nil, func(tg *target) {
		if removed.Load() && tg.addr.Key() == a.Key() {
			late.Add(1)
		}
	})
	start(t, c)
	c.SetTargets([]resolver.Address{a, b, cc})
	testutil.Eventually(t, 3*time.Second, "probes of a", func() bool { return bs[0].Requests() >= 3 })
	testutil.Eventually(t, 3*time.Second, "b to count successes", func() bool { tg, _ := c.Target(b); return tg.Successes >= 2 })

	bBefore, _ := c.Target(b)
	aBefore, _ := c.Target(a)
	c.SetTargets([]resolver.Address{b, cc})
	removed.Store(true)
	reqs := bs[0].Requests()

	if got := addrsOf(c.Targets()); !slices.Equal(got, sorted([]resolver.Address{b, cc})) {
		t.Fatalf("Targets() = %v", got)
	}
	if c.Status(a) != Unknown {
		t.Fatal("a still has a status")
	}
	if r, ok := c.Remembered(a); !ok || r.Status != aBefore.Status || r.Successes < aBefore.Successes {
		t.Fatalf("a not remembered: %+v %v", r, ok)
	}
	bNow := bs[1].Requests()
	testutil.Eventually(t, 3*time.Second, "b to keep being probed", func() bool { return bs[1].Requests() >= bNow+10 })
	if n := late.Load(); n > 0 {
		t.Fatalf("%d probes of a started after its removal", n)
	}
	// A probe started before the removal may still arrive; nothing after it.
	if got := bs[0].Requests(); got > reqs+1 {
		t.Fatalf("a received %d requests after its removal", got-reqs)
	}
	if bAfter, _ := c.Target(b); bAfter.Successes < bBefore.Successes || bAfter.Status != Healthy {
		t.Fatalf("b was reset by the removal: before %+v after %+v", bBefore, bAfter)
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

// Out-of-order or duplicate Changes (older Version) are ignored (R4).
func TestOlderChangesIgnored(t *testing.T) {
	mk := func(s string) resolver.Address { return resolver.Address{IP: mustIP(s), Port: 80, Hostname: "o.test"} }
	a, b, x := mk("127.0.5.1"), mk("127.0.5.2"), mk("127.0.5.3")

	t.Run("direct", func(t *testing.T) {
		c := newChecker(t, passiveOnly("up5"), nil, nil)
		steps := []struct {
			v     uint64
			set   []resolver.Address
			want  []resolver.Address
			apply bool
		}{
			{5, []resolver.Address{a, b}, []resolver.Address{a, b}, true},
			{3, []resolver.Address{x}, []resolver.Address{a, b}, false},
			{5, []resolver.Address{x}, []resolver.Address{a, b}, false},
			{6, []resolver.Address{b, x}, []resolver.Address{b, x}, true},
			{6, nil, []resolver.Address{b, x}, false},
			{1, []resolver.Address{a}, []resolver.Address{b, x}, false},
		}
		for i, s := range steps {
			before := c.Stats()
			c.applyChange(resolver.Change{Name: "up5", Version: s.v, Addresses: s.set})
			after := c.Stats()
			if got := addrsOf(c.Targets()); !slices.Equal(got, s.want) {
				t.Fatalf("step %d: targets %v, want %v", i, got, s.want)
			}
			if applied := after.ChangesApplied > before.ChangesApplied; applied != s.apply {
				t.Fatalf("step %d: applied=%v", i, applied)
			}
		}
		if s := c.Stats(); s.Version != 6 || s.ChangesIgnored != 4 {
			t.Fatalf("stats %+v", s)
		}
		c.applyChange(resolver.Change{Name: "other", Version: 100, Addresses: []resolver.Address{a}})
		if s := c.Stats(); s.Version != 6 {
			t.Fatalf("a Change for another name was applied: %+v", s)
		}
	})

	t.Run("bus", func(t *testing.T) {
		bus := newBus(t)
		c := newChecker(t, passiveOnly("up5b"), bus, nil)
		start(t, c)
		publish(t, bus, c, 10, a, b)
		c.ReportTCPFailure(a)
		c.ReportTCPFailure(a)
		publish(t, bus, c, 9, x)
		publish(t, bus, c, 10, x)
		if got := addrsOf(c.Targets()); !slices.Equal(got, []resolver.Address{a, b}) {
			t.Fatalf("targets %v after older changes", got)
		}
		if c.Status(a) != Unhealthy {
			t.Fatal("a lost its status to an older change")
		}
		if s := c.Stats(); s.ChangesApplied != 1 || s.ChangesIgnored != 2 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// Two hostnames on one IP:port are two targets, probed with their own Host
// header (and TLS server name) (R8).
func TestHostnamesOnOneAddressAreTwoTargets(t *testing.T) {
	for _, typ := range []ProbeType{HTTP, HTTPS} {
		t.Run(typ.String(), func(t *testing.T) {
			var opts []Option
			ca := newCA(t, typ == HTTPS)
			if ca != nil {
				opts = append(opts, WithTLSConfig(ca.ClientConfig()))
			}
			bs := backends(t, "127.0.6.1", 1, ca)
			bs[0].SetHostStatus("b.test", 503)
			a, b := bs[0].Address("a.test"), bs[0].Address("b.test")
			cfg := fast("up7", 20*time.Millisecond)
			cfg.Active.Type = typ
			c := newChecker(t, cfg, nil, nil, opts...)
			start(t, c)
			c.SetTargets([]resolver.Address{a, b})
			if n := len(c.Targets()); n != 2 {
				t.Fatalf("%d targets, want 2", n)
			}
			testutil.Eventually(t, 3*time.Second, "b to turn unhealthy", func() bool { return c.Status(b) == Unhealthy })
			testutil.Eventually(t, 3*time.Second, "a to be probed twice", func() bool { return bs[0].Hosts()["a.test"] >= 2 })
			if c.Status(a) != Healthy {
				t.Fatalf("a is %v", c.Status(a))
			}
			if h := bs[0].Hosts(); len(h) != 2 {
				t.Fatalf("Host headers %v", h)
			}
			if typ == HTTPS {
				if s := bs[0].SNIs(); s["a.test"] == 0 || s["b.test"] == 0 || len(s) != 2 {
					t.Fatalf("server names %v", s)
				}
			}
		})
	}
}

// The sorted-merge path and the lookup path of reconcile agree, including
// on duplicates, unsorted input and Weight changes.
func TestReconcilePathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var pool []resolver.Address
	for i := range 30 {
		pool = append(pool, resolver.Address{IP: netipFrom(10 + i/6), Port: uint16(80 + i%3), Hostname: []string{"a", "b"}[i%2]})
	}
	merged := newChecker(t, passiveOnly("pm"), nil, nil)
	looked := newChecker(t, passiveOnly("pl"), nil, nil)
	for step := range 300 {
		var set []resolver.Address
		for _, a := range pool {
			if rng.IntN(3) > 0 {
				a.Weight = uint16(rng.IntN(2))
				set = append(set, a)
			}
		}
		canon := sorted(set)
		if step%7 == 0 && len(canon) > 0 {
			canon = append(canon, canon[0]) // a duplicate: not canonical
		}
		shuffled := slices.Clone(set)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		merged.SetTargets(canon)
		looked.SetTargets(shuffled)
		if len(set) > 0 {
			a := set[rng.IntN(len(set))]
			merged.ReportTCPFailure(a)
			looked.ReportTCPFailure(a)
		}
		m, l := merged.Targets(), looked.Targets()
		if len(m) != len(l) {
			t.Fatalf("step %d: %d vs %d targets", step, len(m), len(l))
		}
		for i := range m {
			if m[i].Address != l[i].Address || m[i].Status != l[i].Status || m[i].TCPFailures != l[i].TCPFailures {
				t.Fatalf("step %d: %+v vs %+v", step, m[i], l[i])
			}
		}
		if got := addrsOf(m); !slices.Equal(got, dedupe(sorted(set))) {
			t.Fatalf("step %d: targets %v", step, got)
		}
	}
}

func netipFrom(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 5, byte(i)}) }

func dedupe(as []resolver.Address) []resolver.Address {
	return slices.CompactFunc(as, func(a, b resolver.Address) bool { return a.Key() == b.Key() })
}
