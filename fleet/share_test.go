package fleet_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
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
	if took > 2*interval+300*time.Millisecond {
		t.Errorf("took %v, want about one interval (%v) and a little", took, interval)
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
