package tally

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

const name = "api.example"

func newBus(t *testing.T) *events.Bus {
	t.Helper()
	b := events.New()
	t.Cleanup(b.Close)
	return b
}

func addr(i byte) resolver.Address {
	return resolver.Address{IP: netip.AddrFrom4([4]byte{192, 0, 2, i}), Port: 80, Hostname: name}
}

// only returns the one upstream a Tally holds.
func only(t *testing.T, tl *Tally) Upstream {
	t.Helper()
	ups := tl.Read()
	if len(ups) != 1 {
		t.Fatalf("Read returned %d upstreams, want 1", len(ups))
	}
	return ups[0]
}

func sum[K comparable](m map[K]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// recorder is an Observer that keeps what it was handed.
type recorder struct {
	mu       sync.Mutex
	probes   []Probe
	queries  []Query
	requests []Request
}

func (r *recorder) observer() Observer {
	return Observer{
		Probe:   func(p Probe) { r.mu.Lock(); r.probes = append(r.probes, p); r.mu.Unlock() },
		Query:   func(q Query) { r.mu.Lock(); r.queries = append(r.queries, q); r.mu.Unlock() },
		Request: func(q Request) { r.mu.Lock(); r.requests = append(r.requests, q); r.mu.Unlock() },
	}
}

func (r *recorder) lens() (int, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.probes), len(r.queries), len(r.requests)
}

// Every event of a watched upstream is counted once, classified; the
// Observer gets the probes, queries and requests, classified the same way.
func TestCounts(t *testing.T) {
	bus := newBus(t)
	var rec recorder
	tl := New(bus, rec.observer())
	t.Cleanup(tl.Close)
	if !tl.Watch("API.Example.") { // one name, however it is spelled
		t.Fatal("Watch did not start watching")
	}
	if tl.Watch(name) {
		t.Fatal("a second Watch of the same name started watching again")
	}

	for i, o := range []health.ProbeOutcome{health.ProbeSuccess, health.ProbeSuccess, health.ProbeHTTPFailure, health.ProbeTimeout} {
		code := 200
		if o == health.ProbeHTTPFailure {
			code = 500
		} else if o == health.ProbeTimeout {
			code = 0
		}
		events.Publish(bus, health.ProbeTopic(name), health.ProbeResult{Name: name, Address: addr(1), Outcome: o,
			StatusCode: code, Duration: time.Duration(i+1) * time.Millisecond})
	}
	events.Publish(bus, health.StatusTopic(name), health.StatusChange{Name: name, Address: addr(1), From: health.Healthy, To: health.Unhealthy})
	// A verdict that changed under the other's Unhealthy is no transition.
	events.Publish(bus, health.StatusTopic(name), health.StatusChange{Name: name, Address: addr(1), From: health.Unhealthy, To: health.Unhealthy})
	events.Publish(bus, resolver.QueryTopic(name), resolver.Query{Name: name, QName: name + ".", Type: "A"})
	events.Publish(bus, resolver.QueryTopic(name), resolver.Query{Name: name, QName: name + ".", Type: "AAAA",
		Err: &resolver.QueryError{Err: resolver.ErrServerFailure}})
	events.Publish(bus, resolver.FailureTopic(name), resolver.Failure{Name: name, Err: fmt.Errorf("x: %w", resolver.ErrTimeout)})
	events.Publish(bus, resolver.Topic(name), resolver.Change{Name: name, Version: 2, Addresses: []resolver.Address{addr(1), addr(2), addr(3)}})
	testutil.Eventually(t, 10*time.Second, "an address set", func() bool { return only(t, tl).Resolved })
	// A state topic's subscriber skips to the newest value: this one is
	// delivered, and is stale.
	events.Publish(bus, resolver.Topic(name), resolver.Change{Name: name, Version: 1, Addresses: []resolver.Address{addr(1)}})
	for _, r := range []struct {
		i byte
		o balancer.Outcome
	}{{1, balancer.HTTPStatus(200)}, {1, balancer.HTTPStatus(503)}, {2, balancer.ConnFailure}, {2, balancer.Success}} {
		events.Publish(bus, balancer.ResultTopic(name), balancer.Result{Name: name, Address: addr(r.i), Outcome: r.o})
	}

	testutil.Eventually(t, 10*time.Second, "every event counted", func() bool {
		u := only(t, tl)
		p, q, r := rec.lens()
		return sum(u.Probes) == 4 && sum(u.Transitions) == 1 && sum(u.Queries) == 2 && sum(u.Failures) == 1 &&
			sum(u.Requests) == 4 && u.Resolved && p == 4 && q == 2 && r == 4
	})
	time.Sleep(20 * time.Millisecond) // the stale Change and the same-status change, if they were to count
	u := only(t, tl)
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("name", u.Name, name)
	check("probes", u.Probes, map[string]uint64{"ignored": 0, "success": 2, "http_failure": 1, "tcp_failure": 0, "timeout": 1})
	check("transitions", u.Transitions, map[string]uint64{"unhealthy": 1})
	check("queries", u.Queries, map[QueryKey]uint64{{"A", "ok"}: 1, {"AAAA", "servfail"}: 1})
	check("failures", u.Failures, map[string]uint64{"timeout": 1})
	check("requests", u.Requests, map[string]uint64{"2xx": 1, "5xx": 1, "conn_failure": 1, "success": 1})
	check("picks", u.Picks, map[resolver.Key]uint64{addr(1).Key(): 2, addr(2).Key(): 2})
	check("addresses", u.Addresses, 3)
	if u.Checker != nil {
		t.Error("a checker state without a checker")
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var failed int
	for _, p := range rec.probes {
		if p.Upstream != name {
			t.Errorf("probe of upstream %q", p.Upstream)
		}
		if p.Failed {
			failed++
		}
	}
	check("failed probes observed", failed, 2)
	check("queries observed", []string{rec.queries[0].Result, rec.queries[1].Result}, []string{"ok", "servfail"})
	check("query name observed", rec.queries[0].QName, name+".")
	check("request observed", rec.requests[1], Request{Upstream: name, Target: addr(1), Outcome: "5xx", StatusCode: 503})
}

// The address set a state topic retains is counted at Watch; a probe
// published before it is not.
func TestWatchTakesRetainedAddressSet(t *testing.T) {
	bus := newBus(t)
	events.Publish(bus, resolver.Topic(name), resolver.Change{Name: name, Version: 1, Addresses: []resolver.Address{addr(1), addr(2)}})
	events.Publish(bus, health.ProbeTopic(name), health.ProbeResult{Name: name, Outcome: health.ProbeSuccess})
	tl := New(bus, Observer{})
	t.Cleanup(tl.Close)
	tl.Watch(name)
	testutil.Eventually(t, 10*time.Second, "the retained address set", func() bool { return only(t, tl).Resolved })
	time.Sleep(20 * time.Millisecond)
	if u := only(t, tl); u.Addresses != 2 || sum(u.Probes) != 0 {
		t.Errorf("addresses %d, probes %d; want 2 and 0", u.Addresses, sum(u.Probes))
	}
}

// With a checker, Read gives its state, and drops the picks of targets it
// no longer has; the requests by outcome keep counting them.
func TestPicksFollowTheChecker(t *testing.T) {
	bus := newBus(t)
	tl := New(bus, Observer{})
	t.Cleanup(tl.Close)
	checker, err := health.NewChecker(health.Config{Name: name}, bus)
	if err != nil {
		t.Fatal(err)
	}
	checker.SetTargets([]resolver.Address{addr(1), addr(2)})
	if !tl.AddChecker(checker) {
		t.Fatal("AddChecker did not start watching")
	}
	for _, i := range []byte{1, 2, 2} {
		events.Publish(bus, balancer.ResultTopic(name), balancer.Result{Name: name, Address: addr(i), Outcome: balancer.Success})
	}
	testutil.Eventually(t, 10*time.Second, "three requests", func() bool { return sum(only(t, tl).Requests) == 3 })
	u := only(t, tl)
	if u.Checker == nil || u.Checker.Healthy != 2 || u.Checker.Unhealthy != 0 || len(u.Checker.Targets) != 2 || u.Checker.Stats.Targets != 2 {
		t.Fatalf("checker state %+v, want two healthy targets", u.Checker)
	}
	if len(u.Picks) != 2 {
		t.Fatalf("picks %v, want two targets", u.Picks)
	}
	checker.SetTargets([]resolver.Address{addr(1)})
	u = only(t, tl)
	if want := map[resolver.Key]uint64{addr(1).Key(): 1}; !maps.Equal(u.Picks, want) {
		t.Errorf("picks %v after target 2 left, want %v", u.Picks, want)
	}
	if sum(u.Requests) != 3 {
		t.Errorf("requests %v after target 2 left, want 3 in all", u.Requests)
	}
}

// WithoutTargets keeps nothing per target.
func TestWithoutTargets(t *testing.T) {
	bus := newBus(t)
	tl := New(bus, Observer{}, WithoutTargets())
	t.Cleanup(tl.Close)
	checker, err := health.NewChecker(health.Config{Name: name}, bus)
	if err != nil {
		t.Fatal(err)
	}
	checker.SetTargets([]resolver.Address{addr(1)})
	tl.AddChecker(checker)
	events.Publish(bus, balancer.ResultTopic(name), balancer.Result{Name: name, Address: addr(1), Outcome: balancer.Success})
	testutil.Eventually(t, 10*time.Second, "a request", func() bool { return sum(only(t, tl).Requests) == 1 })
	u := only(t, tl)
	if u.Picks != nil || u.Checker.Targets != nil || u.Checker.Healthy != 1 {
		t.Errorf("picks %v, targets %v, healthy %d; want nil, nil, 1", u.Picks, u.Checker.Targets, u.Checker.Healthy)
	}
}

// Unwatch waits for a delivery in progress: once it returns, the Observer
// is not running and is not called again; the upstream's counts are gone.
func TestUnwatchWaitsForTheObserver(t *testing.T) {
	bus := newBus(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before the bus's Close, which waits for the Observer
	var calls atomic.Int32
	tl := New(bus, Observer{Probe: func(Probe) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	}})
	t.Cleanup(tl.Close)
	tl.Watch(name)
	events.Publish(bus, health.ProbeTopic(name), health.ProbeResult{Name: name, Outcome: health.ProbeSuccess})
	<-entered
	done := make(chan struct{})
	go func() { tl.Unwatch(name); close(done) }()
	select {
	case <-done:
		t.Fatal("Unwatch returned while the Observer was running")
	case <-time.After(50 * time.Millisecond):
	}
	free()
	<-done
	events.Publish(bus, health.ProbeTopic(name), health.ProbeResult{Name: name, Outcome: health.ProbeSuccess})
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("Observer called %d times, want 1", n)
	}
	if tl.Watching(name) || len(tl.Read()) != 0 {
		t.Error("the upstream is still there after Unwatch")
	}
}

// After Close nothing more is counted, Watch does nothing, and the counts
// and the checker stay readable.
func TestClose(t *testing.T) {
	bus := newBus(t)
	tl := New(bus, Observer{})
	checker, err := health.NewChecker(health.Config{Name: name}, bus)
	if err != nil {
		t.Fatal(err)
	}
	checker.SetTargets([]resolver.Address{addr(1)})
	tl.AddChecker(checker)
	events.Publish(bus, health.StatusTopic(name), health.StatusChange{Name: name, From: health.Healthy, To: health.Unhealthy})
	testutil.Eventually(t, 10*time.Second, "a transition", func() bool { return sum(only(t, tl).Transitions) == 1 })
	tl.Close()
	tl.Close()
	if tl.Watch("other.example") {
		t.Error("Watch after Close started watching")
	}
	events.Publish(bus, health.StatusTopic(name), health.StatusChange{Name: name, From: health.Unhealthy, To: health.Healthy})
	time.Sleep(20 * time.Millisecond)
	u := only(t, tl)
	if sum(u.Transitions) != 1 || u.Checker == nil || u.Checker.Healthy != 1 {
		t.Errorf("after Close: transitions %v, checker %+v; want 1 and one healthy target", u.Transitions, u.Checker)
	}
}

func TestClasses(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&resolver.QueryError{Err: resolver.ErrServerFailure}, "servfail"},
		{fmt.Errorf("x: %w", resolver.ErrNXDomain), "nxdomain"},
		{errors.Join(&resolver.QueryError{Err: resolver.ErrTimeout}, &resolver.QueryError{Err: resolver.ErrRefused}), "timeout"},
		{errors.New("something else"), "other"},
	} {
		if got := ErrorClass(tc.err); got != tc.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for o, want := range map[balancer.Outcome]string{
		balancer.Success: "success", balancer.ConnFailure: "conn_failure", balancer.Timeout: "timeout",
		balancer.Ignore: "ignore", balancer.Failure: "failure", balancer.HTTPStatus(204): "2xx",
		balancer.HTTPStatus(302): "3xx", balancer.HTTPStatus(429): "4xx", balancer.HTTPStatus(999): "other",
	} {
		if got := RequestOutcome(o); got != want {
			t.Errorf("RequestOutcome(%v) = %q, want %q", o, got, want)
		}
	}
}
