package health

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// WithTargetFilter holds only what the filter keeps of each Change; an
// address the filter drops leaves into memory and comes back with its state.
func TestTargetFilter(t *testing.T) {
	bus := newBus(t)
	var keep map[string]bool
	filter := func(as []resolver.Address) []resolver.Address {
		var out []resolver.Address
		for _, a := range as {
			if keep[a.IP.String()] {
				out = append(out, a)
			}
		}
		return out
	}
	c := newChecker(t, passiveOnly("sub"), bus, nil, WithTargetFilter(filter))
	start(t, c)
	a := resolver.Address{IP: mustIP("127.0.75.1"), Port: 80}
	b := resolver.Address{IP: mustIP("127.0.75.2"), Port: 80}
	keep = map[string]bool{"127.0.75.1": true}
	publish(t, bus, c, 1, a, b)
	if got := addrsOf(c.Targets()); len(got) != 1 || got[0] != a {
		t.Fatalf("targets %v, want only %v", got, a)
	}
	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a)
	keep = map[string]bool{"127.0.75.2": true}
	publish(t, bus, c, 2, a, b)
	if got := addrsOf(c.Targets()); len(got) != 1 || got[0] != b {
		t.Fatalf("targets %v, want only %v", got, b)
	}
	if r, ok := c.Remembered(a); !ok || r.Passive != Unhealthy {
		t.Fatalf("the address the filter dropped is not remembered: %v %+v", ok, r)
	}
	keep = map[string]bool{"127.0.75.1": true, "127.0.75.2": true}
	publish(t, bus, c, 3, a, b)
	if s := c.Status(a); s != Unhealthy {
		t.Fatalf("the address came back as %v, want its ejection back", s)
	}
}

// SetProbeFilter probes only the selected targets, and re-applies the
// selection when called again: newly selected targets are probed at once.
func TestProbeFilter(t *testing.T) {
	bs := backends(t, "127.0.75.11", 2, nil)
	a, b := bs[0].Address(""), bs[1].Address("")
	c := newChecker(t, fast("pf", 20*time.Millisecond), nil, nil)
	c.SetProbeFilter(func(x resolver.Address) bool { return x == a })
	c.SetTargets([]resolver.Address{a, b})
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "a to be probed", func() bool { return bs[0].Requests() >= 3 })
	if n := bs[1].Requests(); n != 0 {
		t.Fatalf("an unselected target was probed %d times", n)
	}
	c.SetProbeFilter(func(x resolver.Address) bool { return x == b })
	testutil.Eventually(t, 3*time.Second, "b to be probed", func() bool { return bs[1].Requests() >= 1 })
	n := bs[0].Requests()
	testutil.Eventually(t, 3*time.Second, "b to be probed again", func() bool { return bs[1].Requests() >= 4 })
	if m := bs[0].Requests(); m > n+1 { // one probe may have been in flight
		t.Fatalf("a was probed %d more times after it was unselected", m-n)
	}
}

// SetActive sets the active verdict from elsewhere and leaves the passive
// one alone.
func TestSetActive(t *testing.T) {
	bus := newBus(t)
	log := recordEvents(t, bus, "sa")
	c := newChecker(t, passiveOnly("sa"), bus, nil)
	a := resolver.Address{IP: mustIP("127.0.75.21"), Port: 80}
	if c.SetActive(a, Unhealthy, "x") {
		t.Fatal("SetActive reports a non-target as a target")
	}
	c.SetTargets([]resolver.Address{a})
	c.ReportTCPFailure(a)
	if !c.SetActive(a, Unhealthy, "shared: HTTP 500") {
		t.Fatal("SetActive of a target")
	}
	tg, _ := c.Target(a)
	if tg.Status != Unhealthy || tg.Active != Unhealthy || tg.Reason != "shared: HTTP 500" || tg.PassiveCounts.TCPFailures != 1 {
		t.Fatalf("after SetActive: %+v", tg)
	}
	c.SetActive(a, Healthy, "shared: HTTP 200")
	if c.Status(a) != Healthy {
		t.Fatal("a shared healthy verdict did not heal")
	}
	testutil.Eventually(t, 2*time.Second, "both changes published", func() bool { return len(log.all()) == 2 })
	if es := log.all(); es[0].Reason != "shared: HTTP 500" || es[1].Reason != "shared: HTTP 200" {
		t.Fatalf("events %+v", es)
	}
}

// SetProbeFilter re-applies the selection at once: once it returns, no
// probe of a target it deselected starts, even one the scheduler had
// already taken off its queue. Checked by the probe hook (under the
// checker's lock) over 300 filter changes while 30 targets are probed
// every 2ms.
func TestProbeFilterAppliesAtOnce(t *testing.T) {
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
	cfg := fast("filter", 2*time.Millisecond)
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
