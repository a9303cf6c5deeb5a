package vigilgrpc_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	gresolver "google.golang.org/grpc/resolver"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// ejecting is a template whose targets one UNAVAILABLE ejects for ten
// minutes; probes decide nothing, so an ejection lasts.
func ejecting(d *dnstest.Server, probe health.Active) vigil.Config {
	return vigil.Config{
		Resolver: resolver.Config{Servers: []string{d.Addr()}},
		Health: health.Config{
			Active: probe,
			Passive: health.Passive{
				Unhealthy: health.UnhealthyRules{TCPFailures: 1},
				Ejection:  health.Ejection{Base: 10 * time.Minute, Max: 10 * time.Minute},
			},
		},
	}
}

// eject makes RPCs on cc until bad is ejected from target's upstream, then
// lets bad answer again.
func eject(t *testing.T, b *vigilgrpc.Builder, cc *grpc.ClientConn, target string, bad *backend) {
	t.Helper()
	chk := upstream(t, b, target).Checker()
	bad.fail(codes.Unavailable)
	testutil.Eventually(t, 5*time.Second, "the failing backend to be ejected", func() bool {
		_, _ = call(context.Background(), cc)
		tg, _ := chk.Target(bad.Address("api.internal"))
		return tg.Passive == health.Unhealthy
	})
	bad.fail(codes.OK) // an RPC that still reaches it would be served
}

// noneTo makes n RPCs on cc, each of which must succeed, none on bad.
func noneTo(t *testing.T, cc *grpc.ClientConn, bad *backend, n int) {
	t.Helper()
	before := bad.RPCs()
	for range n {
		if _, err := call(context.Background(), cc); err != nil {
			t.Fatalf("RPC: %v", err)
		}
	}
	if got := bad.RPCs() - before; got != 0 {
		t.Fatalf("%d of %d RPCs reached the ejected backend", got, n)
	}
}

// A ClientConn that goes idle closes its resolver, and the shared upstream
// stops; when RPCs bring it back, the new upstream starts from the old
// one's verdicts (R9): a backend ejected before stays ejected, and no RPC
// reaches it.
func TestIdleChannelKeepsVerdicts(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.101.1", 2, backendOpts{})
	bad := bs[1]
	if err := d.SetA("api.internal", 60, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	noProbes := health.Active{Healthy: health.HealthyRules{Interval: -1}, Unhealthy: health.UnhealthyRules{Interval: -1}}
	b := newBuilder(t, ejecting(d, noProbes), vigilgrpc.WithHealthWatch(false))
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc := dial(t, b, target, grpc.WithIdleTimeout(300*time.Millisecond))
	waitServed(t, cc, bs)
	eject(t, b, cc, target, bad)

	testutil.Eventually(t, 10*time.Second, "the channel to go idle", func() bool {
		return cc.GetState() == connectivity.Idle
	})
	testutil.Eventually(t, 5*time.Second, "the idle channel's upstream to stop", func() bool {
		_, ok := b.Upstream(target)
		return !ok
	})
	noneTo(t, cc, bad, 20)
	tg, _ := upstream(t, b, target).Checker().Target(bad.Address("api.internal"))
	if tg.Passive != health.Unhealthy {
		t.Fatalf("after the idle channel came back the ejected backend's passive verdict is %v; want its ejection", tg.Passive)
	}
}

// gateProber decides nothing (health.ProbeIgnored), at once or, while
// held, once released, whatever its context says: an upstream's Run, which
// waits for its probes, cannot return meanwhile.
type gateProber struct {
	mu   sync.Mutex
	hold chan struct{}
	held atomic.Int64 // probes waiting now
}

// Probe implements health.Prober.
func (g *gateProber) Probe(context.Context, resolver.Address) (health.ProbeOutcome, string) {
	g.mu.Lock()
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		g.held.Add(1)
		<-hold
		g.held.Add(-1)
	}
	return health.ProbeIgnored, "decides nothing"
}

func (g *gateProber) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = make(chan struct{})
}

// isHeld reports whether probes wait.
func (g *gateProber) isHeld() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hold != nil
}

func (g *gateProber) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold != nil {
		close(g.hold)
		g.hold = nil
	}
}

// watchedBuilder is a Builder that tells when grpc-go asks it for a
// resolver, and whether one was built while gate held the probes.
type watchedBuilder struct {
	*vigilgrpc.Builder
	gate    *gateProber
	entered chan struct{}
	early   atomic.Bool
}

// Build implements resolver.Builder.
func (w *watchedBuilder) Build(target gresolver.Target, cc gresolver.ClientConn, opts gresolver.BuildOptions) (gresolver.Resolver, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	r, err := w.Builder.Build(target, cc, opts)
	if w.gate.isHeld() {
		w.early.Store(true)
	}
	return r, err
}

// A ClientConn that builds its resolver while another one's release is
// stopping the target's upstream waits for that upstream's Run to return
// and then starts from its verdicts, rather than run a second upstream of
// the name beside it; its RPCs wait meanwhile and do not fail.
func TestResolverWaitsForStoppingUpstream(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.102.1", 2, backendOpts{})
	bad := bs[1]
	if err := d.SetA("api.internal", 60, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	g := &gateProber{}
	probe := health.Active{Prober: g,
		Healthy: health.HealthyRules{Interval: 50 * time.Millisecond}, Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond}}
	w := &watchedBuilder{Builder: newBuilder(t, ejecting(d, probe), vigilgrpc.WithHealthWatch(false)), gate: g, entered: make(chan struct{}, 1)}
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	dialW := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(target, grpc.WithResolvers(w), grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	first, second := dialW(), dialW()
	t.Cleanup(g.open) // before the ClientConns close, should the test stop early
	waitServed(t, first, bs)
	eject(t, w.Builder, first, target, bad)
	<-w.entered // the first ClientConn's

	g.close()
	testutil.Eventually(t, 5*time.Second, "a probe to be held", func() bool { return g.held.Load() > 0 })
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = first.Close() // the last user: its resolver's Close stops the upstream
	}()
	testutil.Eventually(t, 5*time.Second, "the upstream to be released", func() bool {
		_, ok := w.Upstream(target)
		return !ok
	})
	served := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), second)
		served <- err
	}()
	<-w.entered
	select {
	case err := <-served:
		t.Fatalf("an RPC was served (%v) while the last upstream of its target still ran: a second one ran beside it", err)
	case <-closed:
		t.Fatal("the upstream stopped while its probe was held")
	case <-time.After(300 * time.Millisecond):
	}
	if _, ok := w.Upstream(target); ok {
		t.Fatal("a new upstream of the target runs while the last one's Run has not returned")
	}
	g.open()
	if err := <-served; err != nil {
		t.Fatalf("the RPC that waited for the stopping upstream: %v", err)
	}
	<-closed
	if w.early.Load() {
		t.Fatal("a resolver was built while the last upstream of its target was still stopping")
	}
	noneTo(t, second, bad, 20)
}
