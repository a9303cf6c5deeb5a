package fleet_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/subset"
)

// Without the fleet every client probes every backend: N probes per
// backend per interval. Once the clients share, r = 2 probe each backend,
// whatever N; the others apply their verdicts.
func TestProbesPerBackendFallFromNToR(t *testing.T) {
	const n, r = 8, 2
	w := newWorld(t, "127.0.141.1", 4, 200*time.Millisecond)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i))
	}
	testutil.Eventually(t, 5*time.Second, "every client probing", func() bool {
		for _, p := range w.probes() {
			if p < 2*n {
				return false
			}
		}
		return true
	})
	alone := w.probeRate(5)
	for _, c := range w.clients {
		c.join(fleet.Config{Probers: r})
	}
	w.waitSettled(n, r)
	shared := w.probeRate(10)
	t.Logf("probes per backend per interval: alone %v, sharing %v", alone, shared)
	for i := range alone {
		if alone[i] < n-1 || alone[i] > n+1 {
			t.Errorf("backend %d alone: %.1f probes per interval, want about %d", i, alone[i], n)
		}
		if shared[i] < r-0.5 || shared[i] > r+0.5 {
			t.Errorf("backend %d shared: %.1f probes per interval, want about %d", i, shared[i], r)
		}
	}
	// Every client holds every backend healthy, most from the fleet.
	applied := uint64(0)
	for _, c := range w.clients {
		applied += c.fleet.Stats().Applied
		for _, a := range w.addrs {
			if st := c.chk.Status(a); st != health.Healthy {
				t.Errorf("%s holds %v %v", c.id, a, st)
			}
		}
	}
	if applied == 0 {
		t.Error("no verdict was applied from the fleet")
	}
}

// A backend that fails is unhealthy at every client within about one
// probe interval (its first prober's next probe) and the time to tell
// the others; when it recovers, every client holds it healthy again.
func TestFailureReachesEveryClient(t *testing.T) {
	const n = 6
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.141.11", 3, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[1]
	start := time.Now()
	w.backends[1].SetPathStatus("/healthz", 500)
	testutil.Eventually(t, 5*time.Second, "every client holding the failed backend unhealthy",
		func() bool { return w.everyone(a, health.Unhealthy) })
	took := time.Since(start)
	t.Logf("failure seen by all %d clients after %v (probe interval %v)", n, took, interval)
	if limit := interval + 200*time.Millisecond; took > limit {
		t.Errorf("took %v, want within one interval and a little, %v", took, limit)
	}
	// Non-probers say why, naming the member whose verdict they hold.
	for _, c := range w.clients {
		if tg, _ := c.chk.Target(a); !strings.Contains(tg.Reason, "HTTP 500") {
			t.Errorf("%s: reason %q, want the prober's HTTP 500", c.id, tg.Reason)
		}
	}
	w.backends[1].SetPathStatus("/healthz", 0)
	testutil.Eventually(t, 5*time.Second, "every client holding the recovered backend healthy",
		func() bool { return w.everyone(a, health.Healthy) })
}

// Subsetting and sharing compose: each client holds 2 of 4 backends; each
// backend is probed by the r highest-ranked members that hold it (members
// ranked above that do not hold it are skipped after their grace period),
// so it gets min(r, holders) probes per interval, and every holder holds
// the same verdict.
func TestSubsetsShareToo(t *testing.T) {
	const n, r = 6, 2
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.141.31", 4, interval)
	holders := map[resolver.Key]int{}
	for i := range n {
		id := fmt.Sprintf("client-%d", i)
		for _, a := range subset.Filter(id, 2)(w.addrs) {
			holders[a.Key()]++
		}
		w.addClientWith(id, healthConfig(interval), health.WithTargetFilter(subset.Filter(id, 2))).join(fleet.Config{Probers: r})
	}
	testutil.Eventually(t, 20*time.Second, "min(r, holders) probers per backend", func() bool {
		if len(w.sharing()) != n {
			return false
		}
		for _, a := range w.addrs {
			if len(w.probersOf(a)) != min(r, holders[a.Key()]) {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * interval) // the probers' verdicts reach the others
	rates := w.probeRate(10)
	for i, a := range w.addrs {
		want := float64(min(r, holders[a.Key()]))
		t.Logf("%v: %d holders, %.1f probes per interval", a, holders[a.Key()], rates[i])
		if rates[i] < want-0.5 || rates[i] > want+0.5 {
			t.Errorf("%v, held by %d: %.1f probes per interval, want %.0f", a, holders[a.Key()], rates[i], want)
		}
	}
	a := w.addrs[0]
	w.backends[0].SetPathStatus("/healthz", 500)
	testutil.Eventually(t, 5*time.Second, "every holder holding the failed backend unhealthy", func() bool {
		for _, c := range w.clients {
			if st := c.chk.Status(a); st != health.Unknown && st != health.Unhealthy {
				return false
			}
		}
		return true
	})
}

// A member holding more addresses than it watches one by one watches the
// whole upstream: the addresses are shared as well, and an address added
// later is read and probed by r members.
func TestManyAddressesWatchTheWholeUpstream(t *testing.T) {
	const n, m = 4, 66
	interval := 500 * time.Millisecond
	w := newWorld(t, "127.0.141.41", 0, interval)
	for i := range m + 1 {
		w.addrs = append(w.addrs, resolver.Address{IP: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), Port: 80, Hostname: upstream})
	}
	all, first := w.addrs, w.addrs[:m]
	w.addrs = first
	hc := healthConfig(interval)
	hc.Active.Prober = health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) {
		return health.ProbeSuccess, "ok"
	})
	for i := range n {
		w.addClientWith(fmt.Sprintf("client-%d", i), hc).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	w.addrs = all
	for _, c := range w.clients {
		c.chk.SetTargets(all)
	}
	w.waitSettled(n, fleet.DefaultProbers)
}
