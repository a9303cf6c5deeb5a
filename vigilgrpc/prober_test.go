package vigilgrpc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

func probe(p *vigilgrpc.Prober, a resolver.Address, timeout time.Duration) (health.ProbeOutcome, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx, a)
}

func TestProberVerdicts(t *testing.T) {
	bs := startBackends(t, "127.0.60.1", 1, backendOpts{})
	b := bs[0]
	b.Health.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	b.Health.SetServingStatus("draining", healthpb.HealthCheckResponse_NOT_SERVING)
	bare := startBackends(t, "127.0.60.2", 1, backendOpts{noHealth: true})[0]
	refused, err := backendtest.RefusedPort(netip.MustParseAddr("127.0.60.3"))
	if err != nil {
		t.Fatal(err)
	}
	silent, err := backendtest.ListenTCPMode(netip.MustParseAddr("127.0.60.4"), 0, backendtest.Silent)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closing, err := backendtest.ListenTCPMode(netip.MustParseAddr("127.0.60.5"), 0, backendtest.CloseAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	defer closing.Close()

	for _, tc := range []struct {
		name    string
		cfg     vigilgrpc.ProberConfig
		addr    resolver.Address
		outcome health.ProbeOutcome
		reason  string
	}{
		{"server serving", vigilgrpc.ProberConfig{}, b.Address("api.internal"), health.ProbeSuccess, "SERVING"},
		{"service serving", vigilgrpc.ProberConfig{Service: "api"}, b.Address("api.internal"), health.ProbeSuccess, "SERVING"},
		{"service not serving", vigilgrpc.ProberConfig{Service: "draining"}, b.Address("api.internal"), health.ProbeHTTPFailure, "NOT_SERVING"},
		{"service unknown", vigilgrpc.ProberConfig{Service: "nope"}, b.Address("api.internal"), health.ProbeHTTPFailure, "SERVICE_UNKNOWN"},
		{"no health service", vigilgrpc.ProberConfig{}, bare.Address("api.internal"), health.ProbeSuccess, "UNIMPLEMENTED (no health service)"},
		{"no health service, failing", vigilgrpc.ProberConfig{FailUnimplemented: true}, bare.Address("api.internal"), health.ProbeHTTPFailure, "UNIMPLEMENTED"},
		{"refused", vigilgrpc.ProberConfig{}, resolver.Address{IP: netip.MustParseAddr("127.0.60.3"), Port: refused}, health.ProbeTCPFailure, "connection refused"},
		{"closed at once", vigilgrpc.ProberConfig{}, closing.Address("api.internal"), health.ProbeTCPFailure, "connection closed|connection reset"},
		{"silent", vigilgrpc.ProberConfig{}, silent.Address("api.internal"), health.ProbeTimeout, "timeout after 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, why := probe(vigilgrpc.NewProber(tc.cfg), tc.addr, 300*time.Millisecond)
			if o != tc.outcome || !slices.Contains(strings.Split(tc.reason, "|"), why) {
				t.Fatalf("probe = %v %q, want %v %q", o, why, tc.outcome, tc.reason)
			}
		})
	}

	t.Run("server turns not serving", func(t *testing.T) {
		p := vigilgrpc.NewProber(vigilgrpc.ProberConfig{})
		b.SetServing(false)
		defer b.SetServing(true)
		if o, why := probe(p, b.Address("api.internal"), time.Second); o != health.ProbeHTTPFailure || why != "NOT_SERVING" {
			t.Fatalf("probe = %v %q, want http_failure NOT_SERVING", o, why)
		}
	})
}

func TestProberTLS(t *testing.T) {
	ca, err := backendtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"api.internal"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b := startBackends(t, "127.0.61.1", 1, backendOpts{creds: credentials.NewServerTLSFromCert(cert)})[0]
	for _, tc := range []struct {
		name     string
		cfg      vigilgrpc.ProberConfig
		hostname string
		outcome  health.ProbeOutcome
		reason   string
	}{
		{"server name from the hostname", vigilgrpc.ProberConfig{TLS: ca.ClientConfig()}, "api.internal", health.ProbeSuccess, "SERVING"},
		{"credentials", vigilgrpc.ProberConfig{Credentials: credentials.NewClientTLSFromCert(ca.Pool(), "")}, "api.internal", health.ProbeSuccess, "SERVING"},
		{"another hostname", vigilgrpc.ProberConfig{TLS: ca.ClientConfig()}, "other.internal", health.ProbeTCPFailure, `TLS: certificate is not valid for "other.internal"`},
		{"unknown authority", vigilgrpc.ProberConfig{TLS: &tls.Config{RootCAs: x509.NewCertPool()}}, "api.internal", health.ProbeTCPFailure, "TLS: certificate signed by an unknown authority"},
		{"plaintext to a TLS server", vigilgrpc.ProberConfig{}, "api.internal", health.ProbeTCPFailure, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, why := probe(vigilgrpc.NewProber(tc.cfg), b.Address(tc.hostname), time.Second)
			if o != tc.outcome || tc.reason != "" && why != tc.reason {
				t.Fatalf("probe = %v %q, want %v %q", o, why, tc.outcome, tc.reason)
			}
		})
	}
}

// Each probe's connection and every goroutine it started are gone when
// Probe returns.
func TestProberLeavesNothing(t *testing.T) {
	b := startBackends(t, "127.0.62.1", 1, backendOpts{})[0]
	refused, err := backendtest.RefusedPort(netip.MustParseAddr("127.0.62.2"))
	if err != nil {
		t.Fatal(err)
	}
	p := vigilgrpc.NewProber(vigilgrpc.ProberConfig{})
	// One probe first: grpc-go starts a few process-wide goroutines once.
	probe(p, b.Address("api.internal"), time.Second)
	base := goleak.IgnoreCurrent()
	for range 20 {
		if o, why := probe(p, b.Address("api.internal"), time.Second); o != health.ProbeSuccess {
			t.Fatalf("probe = %v %q", o, why)
		}
		probe(p, resolver.Address{IP: netip.MustParseAddr("127.0.62.2"), Port: refused}, time.Second)
	}
	// The server's goroutines of the closed connections end soon after;
	// Find retries until they did.
	if err := goleak.Find(base); err != nil {
		t.Fatal(err)
	}
}

// A checker probing with the Prober follows the server's health.
func TestProberInChecker(t *testing.T) {
	b := startBackends(t, "127.0.63.1", 1, backendOpts{})[0]
	chk, err := health.NewChecker(health.Config{
		Name: "api.internal",
		Active: health.Active{
			Prober:    vigilgrpc.NewProber(vigilgrpc.ProberConfig{}),
			Healthy:   health.HealthyRules{Interval: 20 * time.Millisecond, Successes: 1},
			Unhealthy: health.UnhealthyRules{Interval: 20 * time.Millisecond, HTTPFailures: 2},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- chk.Run(ctx) }()
	defer func() { cancel(); <-done }()
	a := b.Address("api.internal")
	chk.SetTargets([]resolver.Address{a})
	b.SetServing(false)
	testutil.Eventually(t, 5*time.Second, "unhealthy after NOT_SERVING", func() bool { return chk.Status(a) == health.Unhealthy })
	if tg, _ := chk.Target(a); tg.Reason != "NOT_SERVING" {
		t.Fatalf("reason %q, want NOT_SERVING", tg.Reason)
	}
	b.SetServing(true)
	testutil.Eventually(t, 5*time.Second, "healthy after SERVING", func() bool { return chk.Status(a) == health.Healthy })
}
