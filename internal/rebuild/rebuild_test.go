package rebuild

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Passive reports move the shared counters with their own thresholds: a
// success resets the failures, a failure the successes, and statuses
// outside both lists count for nothing.
func TestPassiveReportsShareCounters(t *testing.T) {
	a := resolver.Address{IP: netip.MustParseAddr("127.0.0.1"), Port: 80, Hostname: "api.test"}
	c := New(Config{})
	c.SetTargets([]resolver.Address{a})
	report := func(code, n int) {
		for range n {
			c.ReportHTTPStatus(a, code)
		}
	}
	want := func(step string, healthy bool, successes, failures int) {
		t.Helper()
		got, ok := c.Target(a)
		if !ok || got.Healthy != healthy || got.Successes != successes || got.Failures != failures {
			t.Fatalf("%s: target %+v (found %v); want healthy %v, %d successes, %d failures", step, got, ok, healthy, successes, failures)
		}
	}

	report(500, 4)
	want("4 failures", true, 0, 4)
	report(200, 1)
	want("a success", true, 1, 0)
	report(503, 4)
	report(404, 3) // in neither list
	want("4 failures and 3 ignored statuses", true, 0, 4)
	report(429, 1)
	want("the 5th failure", false, 0, 5)
	report(302, 4)
	want("4 successes", false, 4, 0)
	report(200, 1)
	want("the 5th success", true, 5, 0)
	for range 5 {
		c.ReportFailure(a)
	}
	want("5 failed connections", false, 0, 5)

	other := a
	other.Port = 81
	c.ReportHTTPStatus(other, 500) // not a target: nothing happens
	c.ReportFailure(other)
	if _, ok := c.Target(other); ok || c.Len() != 1 {
		t.Errorf("a report made %v a target", other)
	}
}

// A backend whose health endpoint fails is detected by the probes alone,
// unless a traffic success lands between two probes: it resets the
// failure the first probe counted, so the two never add up. Probes are a
// second apart: the test acts between two of them, even on a busy machine.
func TestTrafficSuccessHidesFailingProbe(t *testing.T) {
	b, err := backendtest.Start(netip.MustParseAddr("127.0.0.1"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetPathStatus("/healthz", 500)
	a := b.Address("api.test")
	c := New(Config{Path: "/healthz", Interval: time.Second, Timeout: 500 * time.Millisecond})
	c.SetTargets([]resolver.Address{a})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	state := func() Target {
		tg, _ := c.Target(a)
		return tg
	}
	testutil.Eventually(t, 5*time.Second, "the first probe's failure", func() bool { return state().Failures == 1 })
	c.ReportHTTPStatus(a, 200) // the traffic succeeds before the next probe
	if s := state(); s.Failures != 0 || s.Successes != 1 {
		t.Fatalf("after a traffic success: %+v; want 1 success, 0 failures", s)
	}
	testutil.Eventually(t, 5*time.Second, "the second probe's failure", func() bool { return state().Successes == 0 })
	if s := state(); !s.Healthy || s.Failures != 1 {
		t.Fatalf("two failed probes with a traffic success between them: %+v; want healthy, 1 failure", s)
	}
	// Without traffic, the next failed probe is the second in a row.
	testutil.Eventually(t, 5*time.Second, "the probes to turn the target unhealthy", func() bool { return !state().Healthy })
	if s := state(); s.Failures != 2 {
		t.Errorf("unhealthy with %d failures; want 2", s.Failures)
	}
	if n := b.Paths()["/healthz"]; n < 3 {
		t.Errorf("%d probes reached the backend; want at least 3", n)
	}
}

// The transport spreads requests over the healthy addresses of the last set
// and reports their outcomes; OnChange hears of every status an outcome
// changes, and of none a rebuild resets. A departed target that removal by
// the check host does not match stays a target, healthy again, but gets no
// traffic.
func TestTransportReportsAndPicksFromSet(t *testing.T) {
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.0.1"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	bs[1].SetStatus(500)
	a0, a1 := bs[0].Address("api.test"), bs[1].Address("api.test")
	type change struct {
		a       resolver.Address
		healthy bool
	}
	var mu sync.Mutex
	var changes []change
	c := New(Config{Host: "check.test", PassiveFailures: 2, OnChange: func(a resolver.Address, healthy bool) {
		mu.Lock()
		changes = append(changes, change{a, healthy})
		mu.Unlock()
	}})
	c.SetTargets([]resolver.Address{a0, a1})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: c.Transport(base)}
	get := func(n int) {
		t.Helper()
		for range n {
			resp, err := client.Get("http://api.test/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}

	get(8)
	if c.Healthy(a1) || !c.Healthy(a0) {
		t.Fatalf("after 8 requests: %v healthy %v, %v healthy %v", a0, c.Healthy(a0), a1, c.Healthy(a1))
	}
	mu.Lock()
	if len(changes) != 1 || changes[0] != (change{a1, false}) {
		t.Errorf("changes %v; want %v turning unhealthy", changes, a1)
	}
	mu.Unlock()
	if n := bs[1].Paths()["/x"]; n != 2 {
		t.Errorf("the failing backend got %d requests; want 2 (its passive threshold)", n)
	}
	if h := bs[0].Hosts()["api.test"]; h != 6 {
		t.Errorf("the healthy backend got %d requests with Host api.test; want 6", h)
	}

	c.SetTargets([]resolver.Address{a0}) // a1 departs but stays: its hostname is not the check host
	if c.Len() != 2 || !c.Healthy(a1) {
		t.Fatalf("after the rebuild: %d targets, departed %v healthy %v; want 2 targets, reset to healthy", c.Len(), a1, c.Healthy(a1))
	}
	get(4)
	if n := bs[1].Paths()["/x"]; n != 2 {
		t.Errorf("the departed backend got %d requests; want still 2", n)
	}
	mu.Lock()
	if len(changes) != 1 {
		t.Errorf("changes %v; a rebuild must not report its resets", changes)
	}
	mu.Unlock()

	c.SetTargets(nil)
	if _, err := client.Get("http://api.test/x"); !errors.Is(err, ErrNoHealthy) {
		t.Errorf("with no target: %v; want ErrNoHealthy", err)
	}
}
