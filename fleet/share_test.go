package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
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
	w.waitSettled(n, 2)
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

// Probers that disagree (one sees the backend fail, the other does not)
// do not flap: the one that sees it healthy takes up the failure once,
// as it appears, then its own probes make it healthy again and it stays
// so; every other member holds the backend unhealthy (any prober's
// failure counts).
func TestDisagreeingProbersDoNotFlap(t *testing.T) {
	const n = 4
	interval := 100 * time.Millisecond
	w := newWorld(t, "127.0.141.21", 1, interval)
	a := w.addrs[0]
	var failing atomic.Value // the id of the member whose probes fail
	failing.Store("")
	for i := range n {
		id := fmt.Sprintf("client-%d", i)
		hc := healthConfig(interval)
		hc.Active.Prober = health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) {
			if failing.Load() == id {
				return health.ProbeTCPFailure, "connection refused (from " + id + " only)"
			}
			return health.ProbeSuccess, "ok"
		})
		w.addClientWith(id, hc).join(fleet.Config{})
	}
	w.waitSettled(n, 2)
	probers := w.probersOf(a)
	failing.Store(probers[0])
	var other *client
	for _, c := range w.clients {
		if c.id == probers[1] {
			other = c
		}
	}
	var changes atomic.Int32
	unsubscribe := events.Subscribe(other.bus, health.StatusTopic(upstream), func(health.StatusChange) { changes.Add(1) })
	testutil.Eventually(t, 5*time.Second, "the non-probers holding it unhealthy", func() bool {
		for _, c := range w.clients {
			if c.id != probers[1] && c.chk.Status(a) != health.Unhealthy {
				return false
			}
		}
		return true
	})
	testutil.Eventually(t, 5*time.Second, "the other prober healthy again by its own probes", func() bool {
		return other.chk.Status(a) == health.Healthy
	})
	time.Sleep(10 * interval) // ten more probes each: it must stay healthy
	unsubscribe()
	if st := other.chk.Status(a); st != health.Healthy {
		t.Errorf("the other prober is %v again", st)
	}
	if n := changes.Load(); n > 2 {
		t.Errorf("the other prober's status changed %d times, want at most 2 (took up the failure, recovered)", n)
	}
	for _, c := range w.clients {
		if c.id != probers[1] && c.chk.Status(a) != health.Unhealthy {
			t.Errorf("%s holds %v, want unhealthy: a live prober says so", c.id, c.chk.Status(a))
		}
	}
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
		w.addClientWith(id, healthConfig(interval), health.WithTargetFilter(subset.Filter(id, 2))).join(fleet.Config{})
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
