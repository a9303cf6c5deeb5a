package vigilgrpc_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// A new address gets RPCs within about its TTL, and a removed one stops
// getting them.
func TestAddressesFollowTTL(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.64.1", 2, backendOpts{})
	if err := d.SetA("api.internal", 1, bs[0].IP.String()); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, template(d))
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc := dial(t, b, target)
	ctx := context.Background()
	if ip, err := call(ctx, cc); err != nil || ip != bs[0].IP {
		t.Fatalf("first RPC: %v %v", ip, err)
	}

	changed := time.Now()
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	first := time.Duration(0)
	for deadline := time.Now().Add(10 * time.Second); first == 0; {
		ip, err := call(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		if ip == bs[1].IP {
			first = time.Since(changed)
		}
		if time.Now().After(deadline) {
			t.Fatal("the new address got no RPC within 10s of the change; its TTL is 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("first RPC to the new address %v after the change (TTL 1s)", first)
	if first > 3*time.Second {
		t.Fatalf("first RPC to the new address %v after the change, TTL 1s", first)
	}

	// The first address leaves: once vigil applied it, no RPC reaches it.
	if err := d.SetA("api.internal", 1, bs[1].IP.String()); err != nil {
		t.Fatal(err)
	}
	chk := upstream(t, b, target).Checker()
	testutil.Eventually(t, 10*time.Second, "the first address to leave", func() bool {
		_, ok := chk.Target(bs[0].Address("api.internal"))
		return !ok
	})
	before := bs[0].RPCs()
	for range 50 {
		if ip, err := call(ctx, cc); err != nil || ip != bs[1].IP {
			t.Fatalf("RPC after the removal: %v %v", ip, err)
		}
	}
	if n := bs[0].RPCs() - before; n != 0 {
		t.Fatalf("%d RPCs reached the removed address", n)
	}
}

// SRV weights decide the shares of the RPCs.
func TestSRVWeights(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.65.1", 2, backendOpts{})
	for i, b := range bs {
		if err := d.SetA("node"+itoa(uint16(i))+".api.internal", 60, b.IP.String()); err != nil {
			t.Fatal(err)
		}
	}
	d.SetSRV("_grpc._tcp.api.internal", 60,
		dnstest.SRV{Target: "node0.api.internal", Port: bs[0].Port, Weight: 1, Glue: true},
		dnstest.SRV{Target: "node1.api.internal", Port: bs[1].Port, Weight: 3, Glue: true})
	tmpl := template(d)
	tmpl.Type = resolver.SRV
	b := newBuilder(t, tmpl)
	cc := dial(t, b, "vigil:///_grpc._tcp.api.internal")
	ctx := context.Background()
	if _, err := call(ctx, cc, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	// Both connections ready, so that no pick passes over a target.
	chk := upstream(t, b, "vigil:///_grpc._tcp.api.internal").Checker()
	testutil.Eventually(t, 5*time.Second, "both targets healthy", func() bool { return len(chk.Healthy()) == 2 })
	waitServed(t, cc, bs)
	before := [2]int64{bs[0].RPCs(), bs[1].RPCs()}
	for range 400 {
		if _, err := call(ctx, cc); err != nil {
			t.Fatal(err)
		}
	}
	got := [2]int64{bs[0].RPCs() - before[0], bs[1].RPCs() - before[1]}
	if got[0] < 95 || got[0] > 105 || got[0]+got[1] != 400 {
		t.Fatalf("RPCs per target %v, want 100 and 300 (weights 1 and 3)", got)
	}
}

// waitServed sends RPCs until each of bs served one.
func waitServed(t *testing.T, cc *grpc.ClientConn, bs []*backend) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	testutil.Eventually(t, 5*time.Second, "every backend to serve an RPC", func() bool {
		if ip, err := call(context.Background(), cc); err == nil {
			seen[ip] = true
		}
		return len(seen) == len(bs)
	})
}

// ClientConns of one target share its upstream; it stops, with every
// goroutine it started, when the last one closes.
func TestSharedUpstreamLifecycle(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.66.1", 1, backendOpts{})
	if err := d.SetA("api.internal", 1, bs[0].IP.String()); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, template(d))
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	// One connection first: grpc-go starts process-wide goroutines once.
	warm := dial(t, b, target)
	if _, err := call(context.Background(), warm); err != nil {
		t.Fatal(err)
	}
	_ = warm.Close()
	testutil.Eventually(t, 5*time.Second, "the upstream to stop", func() bool { return len(b.Upstreams()) == 0 })
	base := goleak.IgnoreCurrent()

	open := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(target, grpc.WithResolvers(b), grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := call(context.Background(), cc); err != nil {
			t.Fatal(err)
		}
		return cc
	}
	c1, c2 := open(), open()
	if n := len(b.Upstreams()); n != 1 {
		t.Fatalf("%d upstreams for two ClientConns of one target, want 1", n)
	}
	u, _ := b.Upstream(target)
	_ = c1.Close()
	if _, err := call(context.Background(), c2); err != nil {
		t.Fatalf("RPC of the second ClientConn after the first closed: %v", err)
	}
	if u2, ok := b.Upstream(target); !ok || u2 != u {
		t.Fatal("the upstream did not outlive the first ClientConn")
	}
	_ = c2.Close()
	if n := len(b.Upstreams()); n != 0 {
		t.Fatalf("%d upstreams after every ClientConn closed", n)
	}
	if err := goleak.Find(base); err != nil {
		t.Fatal(err)
	}
}

// Before the first address set, a DNS failure fails RPCs at once, with the
// failure, instead of leaving them waiting.
func TestDNSFailureBeforeFirstSet(t *testing.T) {
	d := dnsServer(t)
	d.SetRcode("api.internal", dns.RcodeServerFailure)
	b := newBuilder(t, template(d))
	cc := dial(t, b, "vigil:///api.internal:50051")
	start := time.Now()
	_, err := call(context.Background(), cc)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "vigilgrpc: resolving api.internal:50051") {
		t.Fatalf("RPC error %v, want UNAVAILABLE with the DNS failure", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the RPC failed after %v: it waited for its deadline", took)
	}
}

// Targets the Builder cannot serve fail its Build with ErrTarget.
func TestBadTargets(t *testing.T) {
	b := newBuilder(t, vigil.Config{})
	srv := newBuilder(t, vigil.Config{Type: resolver.SRV})
	for _, tc := range []struct {
		b      *vigilgrpc.Builder
		target string
	}{
		{b, "vigil:///"},
		{b, "vigil:///10.0.0.1:50051"},
		{b, "vigil:///[::1]:50051"},
		{b, "vigil:///api.internal:0"},
		{b, "vigil:///api.internal:65536"},
		{b, "vigil:///api.internal:http"},
		{b, "vigil://dns.internal/api.internal:50051"},
		{b, "vigil:///bad name:50051"},
		{srv, "vigil:///_grpc._tcp.api.internal:50051"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			u, err := url.Parse(tc.target)
			if err != nil {
				t.Skip("not a URL:", err)
			}
			r, err := tc.b.Build(gresolver.Target{URL: *u}, nil, gresolver.BuildOptions{})
			if !errors.Is(err, vigilgrpc.ErrTarget) {
				if r != nil {
					r.Close()
				}
				t.Fatalf("Build error %v, want ErrTarget", err)
			}
		})
	}
}

func TestNewBuilderErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tmpl  vigil.Config
		opts  []vigilgrpc.Option
		field string
	}{
		{"bad path", vigil.Config{Health: health.Config{Active: health.Active{Path: "healthz"}}}, nil, "Template.Health.Active.Path"},
		{"bad MinTTL", vigil.Config{Resolver: resolver.Config{MinTTL: time.Hour, MaxTTL: time.Second}}, nil, "Template.Resolver.MinTTL"},
		{"bad scheme", vigil.Config{}, []vigilgrpc.Option{vigilgrpc.WithScheme("Vigil")}, "Scheme"},
		{"bad service config", vigil.Config{}, []vigilgrpc.Option{vigilgrpc.WithServiceConfig("[1]")}, "ServiceConfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vigilgrpc.NewBuilder(tc.tmpl, tc.opts...)
			var ce *vigil.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, vigil.ErrInvalidConfig) || !strings.HasPrefix(ce.Field, tc.field) {
				t.Fatalf("NewBuilder error %v, want a ConfigError of %s", err, tc.field)
			}
		})
	}
}

// The template's probe default is the gRPC health service over the
// ClientConn's credentials: TLS end to end, the server name taken from the
// target.
func TestTLSEndToEnd(t *testing.T) {
	ca, err := backendtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"api.internal"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d := dnsServer(t)
	bs := startBackends(t, "127.0.67.1", 2, backendOpts{creds: credentials.NewServerTLSFromCert(cert)})
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, template(d), vigilgrpc.WithHealthWatch(false)) // the probes alone
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc, err := grpc.NewClient(target, grpc.WithResolvers(b),
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(ca.Pool(), "")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	waitServed(t, cc, bs)
	chk := upstream(t, b, target).Checker()
	bs[1].SetServing(false)
	a := bs[1].Address("api.internal")
	testutil.Eventually(t, 5*time.Second, "the TLS probe to see NOT_SERVING", func() bool { return chk.Status(a) == health.Unhealthy })
	if tg, _ := chk.Target(a); tg.Reason != "NOT_SERVING" {
		t.Fatalf("reason %q, want NOT_SERVING", tg.Reason)
	}
}

// Interceptors and call options of the ClientConn work as with any
// resolver.
func TestInterceptors(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.68.1", 1, backendOpts{})
	if err := d.SetA("api.internal", 1, bs[0].IP.String()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var methods []string
	cc := dial(t, newBuilder(t, template(d)), "vigil:///api.internal:"+itoa(bs[0].Port),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			mu.Lock()
			methods = append(methods, method)
			mu.Unlock()
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if _, err := call(context.Background(), cc); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(methods) != 1 || methods[0] != "/grpc.testing.TestService/EmptyCall" {
		t.Fatalf("interceptor saw %v", methods)
	}
}
