package vigilgrpc_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a gRPC server on a loopback address with the standard health
// service and grpc.testing.TestService, counting the RPCs it serves.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	IP     netip.Addr
	Port   uint16
	Health *grpchealth.Server

	srv  *grpc.Server
	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
	rpcs atomic.Int64
	code atomic.Uint32 // the status code of TestService RPCs; 0: OK
	push atomic.Int64  // > 0: the grpc-retry-pushback-ms trailer sent with errors
}

// backendOpts configure startBackends.
type backendOpts struct {
	creds    credentials.TransportCredentials // nil: plaintext
	noHealth bool                             // do not register the health service
}

// startBackends starts n backends on consecutive addresses from first,
// sharing one port.
func startBackends(t testing.TB, first string, n int, o backendOpts) []*backend {
	t.Helper()
	var lastErr error
	for range 20 {
		bs, err := startOnOnePort(netip.MustParseAddr(first), n, o)
		if err == nil {
			t.Cleanup(func() {
				for _, b := range bs {
					b.Stop()
				}
			})
			return bs
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func startOnOnePort(ip netip.Addr, n int, o backendOpts) ([]*backend, error) {
	var bs []*backend
	port := uint16(0)
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
		if err != nil {
			for _, b := range bs {
				b.Stop()
			}
			return nil, err
		}
		port = uint16(ln.Addr().(*net.TCPAddr).Port)
		bs = append(bs, serve(ip, port, ln, o))
		ip = ip.Next()
	}
	return bs, nil
}

func serve(ip netip.Addr, port uint16, ln net.Listener, o backendOpts) *backend {
	var opts []grpc.ServerOption
	if o.creds != nil {
		opts = append(opts, grpc.Creds(o.creds))
	}
	b := &backend{IP: ip, Port: port, ln: ln, srv: grpc.NewServer(opts...), Health: grpchealth.NewServer()}
	testgrpc.RegisterTestServiceServer(b.srv, b)
	if !o.noHealth {
		healthpb.RegisterHealthServer(b.srv, b.Health)
	}
	b.wg.Go(func() { _ = b.srv.Serve(ln) })
	return b
}

// Stop stops the server at once and waits for it.
func (b *backend) Stop() {
	b.once.Do(func() {
		b.srv.Stop()
		b.wg.Wait()
	})
}

// SetServing sets the server's health, as a whole.
func (b *backend) SetServing(serving bool) {
	s := healthpb.HealthCheckResponse_SERVING
	if !serving {
		s = healthpb.HealthCheckResponse_NOT_SERVING
	}
	b.Health.SetServingStatus("", s)
}

// RPCs returns how many TestService RPCs the backend served.
func (b *backend) RPCs() int64 { return b.rpcs.Load() }

// Address returns the vigil address of the backend for hostname.
func (b *backend) Address(hostname string) resolver.Address {
	return resolver.Address{IP: b.IP, Port: b.Port, Hostname: hostname}
}

// fail makes TestService RPCs fail with code (codes.OK: succeed).
func (b *backend) fail(code codes.Code) { b.code.Store(uint32(code)) }

func (b *backend) result(ctx context.Context) error {
	b.rpcs.Add(1)
	code := codes.Code(b.code.Load())
	if code == codes.OK {
		return nil
	}
	if ms := b.push.Load(); ms > 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", strconv.FormatInt(ms, 10)))
	}
	return status.Error(code, "failing as told")
}

// EmptyCall implements TestService.
func (b *backend) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	if err := b.result(ctx); err != nil {
		return nil, err
	}
	return &testgrpc.Empty{}, nil
}

// StreamingOutputCall implements TestService: one response, then the
// backend's result.
func (b *backend) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	if err := b.result(stream.Context()); err != nil {
		return err
	}
	return stream.Send(&testgrpc.StreamingOutputCallResponse{})
}

// ips returns the IPs of bs as strings.
func ips(bs []*backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.IP.String()
	}
	return out
}

// dnsServer starts an in-process DNS server for the test.
func dnsServer(t testing.TB) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// template is an upstream template asking dns, probing fast: a target
// turns unhealthy at its first failed probe.
func template(dns *dnstest.Server) vigil.Config {
	return vigil.Config{
		Resolver: resolver.Config{Servers: []string{dns.Addr()}},
		Health: health.Config{Active: health.Active{
			Timeout:   500 * time.Millisecond,
			Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond, Successes: 1},
			Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond, HTTPFailures: 1, TCPFailures: 1, Timeouts: 1},
		}},
	}
}

// newBuilder returns a Builder of tmpl, failing the test on an error.
func newBuilder(t testing.TB, tmpl vigil.Config, opts ...vigilgrpc.Option) *vigilgrpc.Builder {
	t.Helper()
	b, err := vigilgrpc.NewBuilder(tmpl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dial returns a plaintext ClientConn of target through b, closed when the
// test ends.
func dial(t testing.TB, b *vigilgrpc.Builder, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// call makes one EmptyCall and returns the IP of the backend that served
// it, or the error.
func call(ctx context.Context, cc *grpc.ClientConn, opts ...grpc.CallOption) (netip.Addr, error) {
	var p peer.Peer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := testgrpc.NewTestServiceClient(cc).EmptyCall(ctx, &testgrpc.Empty{}, append(opts, grpc.Peer(&p))...)
	if p.Addr == nil {
		if err == nil {
			err = errors.New("no peer")
		}
		return netip.Addr{}, err
	}
	ap, perr := netip.ParseAddrPort(p.Addr.String())
	if perr != nil {
		return netip.Addr{}, perr
	}
	return ap.Addr(), err
}

// upstream returns the running upstream of target, waiting for it.
func upstream(t testing.TB, b *vigilgrpc.Builder, target string) *vigil.Upstream {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if u, ok := b.Upstream(target); ok {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upstream for %s", target)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// itoa formats a port.
func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// insecureCreds are plaintext transport credentials.
func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
