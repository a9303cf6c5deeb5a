package fleet_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
)

// The server stops in the middle of a run: every client falls back to
// probing every backend itself (and says why), still sees a failure by its
// own probes, and when the server is back they share again, with r probers
// per backend, and their verdicts converge: a recovery and a new failure
// reach every client through the fleet. Finding their own values again
// is no conflict.
func TestServerRestartFallsBackAndResumes(t *testing.T) {
	const n, r = 6, fleet.DefaultProbers
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.143.1", 3, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, r)

	w.nats.Stop()
	testutil.Eventually(t, 10*time.Second, "every client falling back", func() bool { return len(w.sharing()) == 0 })
	testutil.Eventually(t, 5*time.Second, "every client logging its fallback", func() bool {
		for _, c := range w.clients {
			if !strings.Contains(c.log.String(), "probing every address locally") {
				return false
			}
		}
		return true
	})
	if rate := w.probeRate(5); rate[0] < n-1.5 {
		t.Errorf("during the outage backend 0 gets %.1f probes per interval, want about %d: the clients do not probe locally", rate[0], n)
	}
	w.backends[0].SetPathStatus("/healthz", 500)
	testutil.Eventually(t, 5*time.Second, "every client seeing the failure by itself", func() bool {
		return w.everyone(w.addrs[0], health.Unhealthy)
	})

	if err := w.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	w.waitSettled(n, r)
	if rate := w.probeRate(10); rate[1] < r-0.5 || rate[1] > r+0.5 {
		t.Errorf("after the restart backend 1 gets %.1f probes per interval, want %d", rate[1], r)
	}
	// Nothing was lost: backend 0 is still unhealthy everywhere.
	if !w.everyone(w.addrs[0], health.Unhealthy) {
		t.Error("a client forgot the failure across the outage")
	}
	w.backends[0].SetPathStatus("/healthz", 0)
	testutil.Eventually(t, 5*time.Second, "every client seeing the recovery", func() bool {
		return w.everyone(w.addrs[0], health.Healthy)
	})
	w.backends[2].SetPathStatus("/healthz", 503)
	testutil.Eventually(t, 5*time.Second, "every client seeing a new failure", func() bool {
		return w.everyone(w.addrs[2], health.Unhealthy)
	})
	for _, c := range w.clients {
		st := c.fleet.Stats()
		if st.Sessions < 2 || st.Fallbacks < 1 {
			t.Errorf("%s: %+v, want 2 sessions and a fallback", c.id, st)
		}
		// Its own values, found again after the restart, are no conflict:
		// only another instance's with its id would be.
		if st.Conflicts != 0 {
			t.Errorf("%s: %d conflicts after a restart, want none", c.id, st.Conflicts)
		}
	}
}

// A server that cannot be reached at first is no error: New returns, Run
// logs it and the checker probes everything; when the server comes up the
// member shares. With WithWait, New reports ErrUnavailable instead.
func TestUnreachableServer(t *testing.T) {
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.143.11", 2, interval)
	url := w.nats.URL()
	w.nats.Stop()

	if _, err := fleet.New(fleet.Config{URL: url}, fleet.WithWait(300*time.Millisecond)); !errors.Is(err, fleet.ErrUnavailable) {
		t.Fatalf("New with WithWait to a stopped server: %v, want ErrUnavailable", err)
	}
	for i := range 3 {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{URL: url})
	}
	testutil.Eventually(t, 5*time.Second, "the clients logging that they are not connected", func() bool {
		for _, c := range w.clients {
			if !strings.Contains(c.log.String(), "not connected to NATS") {
				return false
			}
		}
		return true
	})
	if rate := w.probeRate(5); rate[0] < 2 {
		t.Errorf("not connected, backend 0 gets %.1f probes per interval, want 3: local probing", rate[0])
	}
	if err := w.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	w.waitSettled(3, fleet.DefaultProbers)
	if _, err := fleet.New(fleet.Config{URL: url}, fleet.WithWait(5*time.Second)); err != nil {
		t.Fatalf("New with WithWait to a running server: %v", err)
	}
}
