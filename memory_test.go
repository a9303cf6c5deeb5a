package vigil_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// gate is a health.Prober whose answer for each IP the test sets: success,
// or a TCP failure. While held, the probes of failing IPs wait until it is
// released, so that a checker that did not know such an address had
// failed goes on holding it at its initial status, Healthy. Held probes
// end with their context too, unless the gate is stubborn: then a
// checker's Run, which waits for its probes, cannot return before the
// release.
type gate struct {
	mu       sync.Mutex
	failing  map[netip.Addr]bool
	hold     chan struct{} // nil: not held
	stubborn bool
	held     atomic.Int64 // probes waiting at the gate now
}

func newGate(t *testing.T) *gate {
	g := &gate{failing: make(map[netip.Addr]bool)}
	t.Cleanup(g.release) // a stubborn probe must not outlive the test
	return g
}

// Probe implements health.Prober.
func (g *gate) Probe(ctx context.Context, a resolver.Address) (health.ProbeOutcome, string) {
	g.mu.Lock()
	fail, hold, stubborn := g.failing[a.IP], g.hold, g.stubborn
	g.mu.Unlock()
	if !fail {
		return health.ProbeSuccess, "open"
	}
	if hold != nil {
		g.held.Add(1)
		if stubborn {
			<-hold
		} else {
			select {
			case <-hold:
			case <-ctx.Done():
			}
		}
		g.held.Add(-1)
	}
	return health.ProbeTCPFailure, "refused by the test"
}

// fail makes the probes of ip fail.
func (g *gate) fail(ip netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failing[ip] = true
}

// holdProbes makes the probes of failing IPs wait for release.
func (g *gate) holdProbes(stubborn bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold, g.stubborn = make(chan struct{}), stubborn
}

// release lets held probes go, and the next ones through at once.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold != nil {
		close(g.hold)
		g.hold = nil
	}
}

// gated is a health config probing with g every 50ms, one outcome
// deciding a verdict.
func gated(g *gate) health.Config {
	return health.Config{Active: health.Active{
		Prober:    g,
		Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond, Successes: 1},
		Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond, TCPFailures: 1},
	}}
}

// statusOf returns the status u's checker gives b's address for name.
func statusOf(u *vigil.Upstream, b *backendtest.Backend, name string) health.Status {
	return u.Checker().Status(b.Address(name))
}

// A new Upstream of a name given the Memory of a stopped one continues from
// its state (R9): a backend the old one found failing is held unhealthy
// from the start, while its first probe is still under way, and no request
// reaches it.
func TestUpstreamWithMemoryContinues(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.41.1", 2)
	good, bad := bs[0], bs[1]
	_ = srv.SetA("carry.internal", 60, ips(bs)...)
	g := newGate(t)
	g.fail(bad.IP)
	cfg := vigil.Config{
		Name:     "carry.internal",
		Port:     good.Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}},
		Health:   gated(g),
	}
	m := health.NewMemory(0)
	first, err := vigil.New(cfg, vigil.WithMemory(m))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "the failing backend to be unhealthy", func() bool {
		return statusOf(first, bad, "carry.internal") == health.Unhealthy
	})
	g.holdProbes(false) // from now on a probe of bad cannot tell its verdict
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	next, err := vigil.New(cfg, vigil.WithMemory(m))
	if err != nil {
		t.Fatal(err)
	}
	run(t, next)
	testutil.Eventually(t, 5*time.Second, "both addresses to be targets", func() bool {
		return len(next.Checker().Targets()) == 2
	})
	if st := statusOf(next, bad, "carry.internal"); st != health.Unhealthy {
		t.Fatalf("the new upstream holds the failing backend %v before any probe told it so; want the old one's Unhealthy", st)
	}
	before := bad.Requests()
	c := &http.Client{Transport: next.Transport(nil)}
	for range 20 {
		if code, err := get(t, c, fmt.Sprintf("http://carry.internal:%d/", good.Port)); err != nil || code != 200 {
			t.Fatalf("request: %d, %v", code, err)
		}
	}
	if n := bad.Requests() - before; n != 0 {
		t.Fatalf("%d requests reached the backend the old upstream had found failing", n)
	}
}

// An Upstream whose Run is called again goes on from its own state, also
// with a shared Memory: what its first Run left there must not come back
// in place of what happened since (here: an address that failed after the
// restart, left and returned must return unhealthy, not with the state
// the first Run left).
func TestUpstreamRunAgainKeepsState(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.42.1", 2)
	good, bad := bs[0], bs[1]
	_ = srv.SetA("again.internal", 60, ips(bs)...)
	g := newGate(t)
	u, err := vigil.New(vigil.Config{
		Name:     "again.internal",
		Port:     good.Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond},
		Health:   gated(g),
	}, vigil.WithMemory(health.NewMemory(0)))
	if err != nil {
		t.Fatal(err)
	}
	runOnce := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	stop := runOnce()
	testutil.Eventually(t, 5*time.Second, "both backends to be healthy", func() bool {
		return len(u.Checker().Healthy()) == 2
	})
	stop()

	stop = runOnce()
	defer stop()
	g.fail(bad.IP)
	testutil.Eventually(t, 5*time.Second, "the failing backend to be unhealthy", func() bool {
		return statusOf(u, bad, "again.internal") == health.Unhealthy
	})
	_ = srv.SetA("again.internal", 60, good.IP.String())
	u.Source().ResolveNow()
	testutil.Eventually(t, 5*time.Second, "the failing backend to leave", func() bool {
		return len(u.Checker().Targets()) == 1
	})
	g.holdProbes(false) // once back, its probe cannot tell its verdict
	_ = srv.SetA("again.internal", 60, ips(bs)...)
	u.Source().ResolveNow()
	testutil.Eventually(t, 5*time.Second, "the failing backend to return", func() bool {
		return len(u.Checker().Targets()) == 2
	})
	if st := statusOf(u, bad, "again.internal"); st != health.Unhealthy {
		t.Fatalf("a backend that failed after the upstream ran again, left and returned is %v; want Unhealthy, as it left", st)
	}
}

// A Client's upstream made from the template that was stopped for
// idleness comes back, at the next request for its host, from the old
// one's state (R9): a backend found failing stays out of traffic, though
// its first probe by the new upstream has not answered yet.
func TestClientIdleUpstreamComesBackWithItsState(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.43.1", 2)
	good, bad := bs[0], bs[1]
	_ = srv.SetA("back.internal", 60, ips(bs)...)
	g := newGate(t)
	g.fail(bad.IP)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}, Health: gated(g)},
		IdleTimeout: time.Second, // far above the time its first probe takes
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := fmt.Sprintf("back.internal:%d", good.Port)
	if code, err := get(t, c.Client, "http://"+host+"/"); err != nil || code != 200 {
		t.Fatalf("first request: %d, %v", code, err)
	}
	first, ok := c.Upstream(host)
	if !ok {
		t.Fatal("no upstream for the host")
	}
	testutil.Eventually(t, 5*time.Second, "the failing backend to be unhealthy", func() bool {
		return statusOf(first, bad, "back.internal") == health.Unhealthy
	})
	g.holdProbes(false)
	testutil.Eventually(t, 10*time.Second, "the idle upstream to stop", func() bool {
		return len(c.Upstreams()) == 0
	})

	before := bad.Requests()
	for range 20 {
		if code, err := get(t, c.Client, "http://"+host+"/"); err != nil || code != 200 {
			t.Fatalf("request after the idle stop: %d, %v", code, err)
		}
	}
	if n := bad.Requests() - before; n != 0 {
		t.Fatalf("%d requests reached the backend the idle upstream had found failing", n)
	}
	next, ok := c.Upstream(host)
	if !ok || next == first {
		t.Fatal("no new upstream after the idle stop")
	}
	if st := statusOf(next, bad, "back.internal"); st != health.Unhealthy {
		t.Fatalf("the new upstream holds the failing backend %v; want Unhealthy", st)
	}
}

// A request for a host whose idle upstream is still stopping waits for its
// Run to return before the next upstream of the host starts (two running
// at once would overwrite each other's state in the memory), without
// failing, and without holding up requests for other hosts.
func TestClientRequestWaitsForStoppingUpstream(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.44.1", 2)
	good, bad := bs[0], bs[1]
	other := backends(t, "127.78.44.11", 1)[0]
	_ = srv.SetA("stopping.internal", 60, ips(bs)...)
	_ = srv.SetA("other.internal", 60, other.IP.String())
	g := newGate(t)
	g.fail(bad.IP)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}, Health: gated(g)},
		IdleTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer g.release() // before Close, which waits for the held probe's upstream
	host := fmt.Sprintf("stopping.internal:%d", good.Port)
	if code, err := get(t, c.Client, "http://"+host+"/"); err != nil || code != 200 {
		t.Fatalf("first request: %d, %v", code, err)
	}
	first, _ := c.Upstream(host)
	testutil.Eventually(t, 5*time.Second, "the failing backend to be unhealthy", func() bool {
		return statusOf(first, bad, "stopping.internal") == health.Unhealthy
	})
	g.holdProbes(true) // the upstream's Run cannot return while its probe waits
	testutil.Eventually(t, 5*time.Second, "a probe to be held", func() bool { return g.held.Load() > 0 })
	testutil.Eventually(t, 10*time.Second, "the idle stop to begin", func() bool { return len(c.Upstreams()) == 0 })

	type result struct {
		code int
		err  error
	}
	waiting := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, err := do(ctx, c.Client, "http://"+host+"/")
		waiting <- result{code, err}
	}()
	if code, err := get(t, c.Client, fmt.Sprintf("http://other.internal:%d/", other.Port)); err != nil || code != 200 {
		t.Fatalf("a request for another host while one stops: %d, %v", code, err)
	}
	select {
	case r := <-waiting:
		t.Fatalf("a request for a host whose upstream was still stopping was served at once (%d, %v): a second upstream of the name ran beside it", r.code, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, ok := c.Upstream(host); ok {
		t.Fatal("a new upstream of the host runs while the old one's Run has not returned")
	}
	g.release()
	r := <-waiting
	if r.err != nil || r.code != 200 {
		t.Fatalf("the request that waited for the stopping upstream: %d, %v", r.code, r.err)
	}
}
