package health

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
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
		// bad is probed between changes: a reset would show.
		n := bs[0].Requests()
		testutil.Eventually(t, 3*time.Second, "a probe of bad", func() bool { return bs[0].Requests() > n })
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
	if c.targets[a.Key()] != ta || !reflect.DeepEqual(ta.state, beforeState) || !ta.next.Equal(beforeNext) || ta.index < 0 {
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
// header (and TLS server name), each with its own verdicts: one name failing
// its probes or its traffic leaves the other untouched (R8).
func TestHostnamesOnOneAddressAreTwoTargets(t *testing.T) {
	for _, typ := range []ProbeType{HTTP, HTTPS} {
		t.Run(typ.String(), func(t *testing.T) {
			var opts []Option
			ca := newCA(t, typ == HTTPS)
			if ca != nil {
				opts = append(opts, WithTLSConfig(ca.ClientConfig()))
			}
			bs := backends(t, "127.0.6.1", 1, ca)
			// The Host header carries the port, which is not the scheme's default.
			hostport := func(name string) string { return name + ":" + strconv.Itoa(int(bs[0].Port)) }
			bs[0].SetHostStatus(hostport("b.test"), 503)
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
			testutil.Eventually(t, 3*time.Second, "a to be probed twice", func() bool { return bs[0].Hosts()[hostport("a.test")] >= 2 })
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
			before, _ := c.Target(b)
			for range 10 {
				c.ReportTimeout(a)
				c.ReportSuccess(b)
			}
			if ta, _ := c.Target(a); ta.Active != Healthy || ta.Passive != Unhealthy || ta.PassiveCounts.Timeouts != 10 {
				t.Fatalf("a.test %+v", ta)
			}
			if tb, _ := c.Target(b); tb.Active != Unhealthy || tb.Passive != Healthy || tb.PassiveCounts.Timeouts != 0 ||
				tb.PassiveCounts.Successes != before.PassiveCounts.Successes+10 {
				t.Fatalf("b.test %+v", tb)
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

// R1 under the verdict model: a target kept across Changes (another target
// added, then removed, then a Weight changed) keeps both verdicts, both
// sets of counters, its ejection deadline, its reason and its probe
// schedule, and is not probed again.
func TestKeptTargetKeepsEverything(t *testing.T) {
	pr := newScripted()
	cfg := fast("keep", time.Hour)
	cfg.Active.Prober = pr
	cfg.Passive.Ejection = Ejection{Base: time.Hour, Max: 2 * time.Hour}
	cfg.Passive.Unhealthy.HTTPFailures = 4
	bus := newBus(t)
	c := newChecker(t, cfg, bus, nil)
	as := loopback(10, 3, "keep.test")
	a, b, extra := as[0], as[1], as[2]
	pr.set(a, ProbeHTTPFailure)
	start(t, c)
	publish(t, bus, c, 1, a, b)
	testutil.Eventually(t, 2*time.Second, "both first probes", func() bool { return c.Stats().ProbesCompleted == 2 })

	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a) // passive threshold 2: a is ejected for an hour
	c.ReportHTTPStatus(b, 500)
	c.ReportHTTPStatus(b, 503) // b: two of four passive HTTP failures
	before := map[resolver.Key]Target{a.Key(): mustTarget(t, c, a), b.Key(): mustTarget(t, c, b)}
	in := map[resolver.Key]internals{a.Key(): inside(c, a), b.Key(): inside(c, b)}
	if ta := before[a.Key()]; ta.Active != Healthy || ta.Passive != Unhealthy || ta.HTTPFailures != 1 ||
		ta.PassiveCounts.TCPFailures != 2 || ta.EjectedUntil.IsZero() {
		t.Fatalf("setup: a is %+v", ta)
	}
	if tb := before[b.Key()]; tb.PassiveCounts.HTTPFailures != 2 || tb.Successes != 1 {
		t.Fatalf("setup: b is %+v", tb)
	}
	started := c.Stats().ProbesStarted

	bw := b
	bw.Weight = 7
	steps := []struct {
		name  string
		addrs []resolver.Address
	}{
		{"another target added", []resolver.Address{a, b, extra}},
		{"it is removed", []resolver.Address{a, b}},
		{"a weight changes", []resolver.Address{a, bw}},
		{"the same set again", []resolver.Address{bw, a}},
	}
	for i, st := range steps {
		publish(t, bus, c, uint64(2+i), st.addrs...)
		for _, x := range []resolver.Address{a, b} {
			got := mustTarget(t, c, x)
			want := before[x.Key()]
			want.Address = got.Address // Weight follows the set
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %s, %v changed:\n got %+v\nwant %+v", st.name, x, got, want)
			}
			if gi := inside(c, x); gi != in[x.Key()] {
				t.Fatalf("after %s, %v's schedule changed: %+v, was %+v", st.name, x, gi, in[x.Key()])
			}
		}
	}
	// Only extra was probed meanwhile.
	testutil.Eventually(t, 2*time.Second, "extra's probe", func() bool { return pr.callsOf(extra) == 1 })
	if n := c.Stats().ProbesStarted - started; n != 1 {
		t.Fatalf("%d probes started across the changes, want 1 (the new target)", n)
	}
	if pr.callsOf(a) != 1 || pr.callsOf(b) != 1 {
		t.Fatalf("kept targets probed again: a %d, b %d", pr.callsOf(a), pr.callsOf(b))
	}
	// An older Change is ignored (R4): nothing moves.
	publish(t, bus, c, 1, extra)
	if _, ok := c.Target(a); !ok || c.Stats().Targets != 2 {
		t.Fatalf("an old Change was applied: %+v", c.Targets())
	}
}

// R2: once SetTargets returns, no probe of a target it removed starts,
// under churn (200 random target sets of 40 addresses, probing every few
// milliseconds); every start is seen by the probe hook, which runs under
// the checker's lock.
func TestNoProbeStartsAfterRemoval(t *testing.T) {
	all := loopback(11, 40, "churn.test")
	var (
		mu         sync.Mutex
		gone       = map[resolver.Key]bool{}
		violations []string
		starts     atomic.Int64
	)
	hook := func(tg *target) {
		starts.Add(1)
		mu.Lock()
		if gone[tg.addr.Key()] {
			violations = append(violations, tg.addr.String())
		}
		mu.Unlock()
	}
	pr := newScripted()
	pr.delay = time.Millisecond
	cfg := fast("gone", 2*time.Millisecond)
	cfg.Active.Prober = pr
	c := newChecker(t, cfg, nil, hook, WithMaxProbes(8))
	stop := startStoppable(t, c)
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		var set []resolver.Address
		in := map[resolver.Key]bool{}
		for _, a := range all {
			if rng.IntN(2) == 0 {
				set = append(set, a)
				in[a.Key()] = true
			}
		}
		fresh := false
		mu.Lock()
		for k := range in {
			fresh = fresh || gone[k] || i == 0
			delete(gone, k) // coming back: its probes may start again
		}
		mu.Unlock()
		before := starts.Load()
		c.SetTargets(set)
		mu.Lock()
		for _, a := range all {
			if !in[a.Key()] {
				gone[a.Key()] = true
			}
		}
		mu.Unlock()
		if fresh && rng.IntN(2) == 0 { // now and then, let a new target's probe start before the next change
			testutil.Eventually(t, 2*time.Second, "a probe start", func() bool { return starts.Load() > before })
		}
	}
	c.SetTargets(nil)
	mu.Lock()
	for _, a := range all {
		gone[a.Key()] = true
	}
	mu.Unlock()
	stop() // every probe the scheduler took has started or been dropped by now
	mu.Lock()
	bad := append([]string(nil), violations...)
	mu.Unlock()
	t.Logf("%d probes started", starts.Load())
	if starts.Load() < 100 {
		t.Fatalf("only %d probes started: the churn did not exercise probing", starts.Load())
	}
	if len(bad) > 0 {
		t.Fatalf("%d probes started after their target's removal, e.g. %v", len(bad), bad[0])
	}
	if n := c.Stats().Targets; n != 0 {
		t.Fatalf("%d targets after the empty set", n)
	}
}
