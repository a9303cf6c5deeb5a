package vigilgrpc_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// benchClients returns, over the same three loopback backends, a
// ClientConn of grpc-go's round_robin (addresses from a manual resolver),
// one of round_robin with client-side health checking, and one of vigil
// (addresses from the in-process DNS server), each with every backend
// connected.
func benchClients(b *testing.B) map[string]*grpc.ClientConn {
	d := dnsServer(b)
	bs := startBackends(b, "127.0.80.1", 3, backendOpts{})
	if err := d.SetA("api.internal", 60, ips(bs)...); err != nil {
		b.Fatal(err)
	}
	var addrs []gresolver.Address
	for _, s := range bs {
		addrs = append(addrs, gresolver.Address{Addr: s.IP.String() + ":" + itoa(s.Port)})
	}
	manualConn := func(sc string) *grpc.ClientConn {
		r := manual.NewBuilderWithScheme("bench")
		r.InitialState(gresolver.State{Addresses: addrs})
		cc, err := grpc.NewClient("bench:///api.internal", grpc.WithResolvers(r),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(sc))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	tmpl := template(d)
	tmpl.Health.Active.Healthy.Interval = time.Second // as by default: probes cost little here
	ccs := map[string]*grpc.ClientConn{
		"round_robin":        manualConn(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		"round_robin+health": manualConn(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`),
		"vigil":              dial(b, newBuilder(b, tmpl), "vigil:///api.internal:"+itoa(bs[0].Port)),
	}
	for name, cc := range ccs {
		seen := map[string]bool{}
		testutil.Eventually(b, 5*time.Second, name+" to reach every backend", func() bool {
			ip, err := call(context.Background(), cc)
			if err == nil {
				seen[ip.String()] = true
			}
			return len(seen) == len(bs)
		})
	}
	return ccs
}

// BenchmarkUnaryRPC is one EmptyCall over loopback to one of three
// backends, through each client: the difference is what vigil's picker and
// its passive reports cost per RPC.
func BenchmarkUnaryRPC(b *testing.B) {
	ccs := benchClients(b)
	for _, name := range []string{"round_robin", "round_robin+health", "vigil"} {
		client := testgrpc.NewTestServiceClient(ccs[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for range b.N {
				if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkProbe is one grpc.health.v1 Check: by the Prober, over a
// connection of its own, and over one connection kept open, which is what
// a cache of connections would save. goroutines/conn is what each kept
// connection holds between probes.
func BenchmarkProbe(b *testing.B) {
	s := startBackends(b, "127.0.81.1", 1, backendOpts{})[0]
	a := s.Address("api.internal")
	b.Run("own-connection", func(b *testing.B) {
		p := vigilgrpc.NewProber(vigilgrpc.ProberConfig{})
		b.ReportAllocs()
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			o, why := p.Probe(ctx, a)
			cancel()
			if o != health.ProbeSuccess {
				b.Fatal(o, why)
			}
		}
	})
	b.Run("kept-connection", func(b *testing.B) {
		before := runtime.NumGoroutine()
		cc, err := grpc.NewClient(a.HostPort(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		client := healthpb.NewHealthClient(cc)
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			b.Fatal(err)
		}
		// The client's goroutines, and the server's for its connection.
		held := runtime.NumGoroutine() - before
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				b.Fatal(resp, err)
			}
		}
		b.ReportMetric(float64(held), "goroutines/conn")
	})
}
