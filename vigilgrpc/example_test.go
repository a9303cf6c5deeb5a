package vigilgrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// A grpc-go client switched from "dns:///" to vigil: RPCs follow the DNS
// name's TTL, and a backend that turns NOT_SERVING gets no more RPCs.
func ExampleNewBuilder() {
	// A DNS server answering api.internal with two gRPC servers that have
	// the standard health service.
	dns, _ := dnstest.Start("")
	defer dns.Close()
	port, servers := exampleServers("127.0.90.1", "127.0.90.2")
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	_ = dns.SetA("api.internal", 1, "127.0.90.1", "127.0.90.2")

	b, err := vigilgrpc.NewBuilder(vigil.Config{
		Resolver: resolver.Config{Servers: []string{dns.Addr()}}, // default: /etc/resolv.conf
		Health: health.Config{Active: health.Active{ // default probe: grpc.health.v1 Check
			Unhealthy: health.UnhealthyRules{HTTPFailures: 1}, // act on the first NOT_SERVING
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	target := "vigil:///api.internal:" + strconv.Itoa(port) // was "dns:///api.internal:<port>"
	cc, err := grpc.NewClient(target, grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()

	client := testgrpc.NewTestServiceClient(cc)
	served := func() map[string]int {
		n := map[string]int{}
		for range 10 {
			var p peer.Peer
			if _, err := client.EmptyCall(context.Background(), &testgrpc.Empty{}, grpc.Peer(&p)); err != nil {
				log.Fatal(err)
			}
			host, _, _ := net.SplitHostPort(p.Addr.String())
			n[host]++
		}
		return n
	}
	for len(served()) < 2 { // until both connections are up
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("both serving:", served())

	servers[1].health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	up, _ := b.Upstream(target)
	bad := resolver.Address{IP: servers[1].ip, Port: uint16(port), Hostname: "api.internal"}
	for up.Checker().Status(bad) != health.Unhealthy {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("one NOT_SERVING:", served())
	// Output:
	// both serving: map[127.0.90.1:5 127.0.90.2:5]
	// one NOT_SERVING: map[127.0.90.1:10]
}

// exampleServer is a gRPC server for the example.
type exampleServer struct {
	testgrpc.UnimplementedTestServiceServer
	ip     netip.Addr
	srv    *grpc.Server
	health *grpchealth.Server
	done   chan struct{}
}

// EmptyCall implements TestService.
func (*exampleServer) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

// Stop stops the server and waits for it.
func (s *exampleServer) Stop() { s.srv.Stop(); <-s.done }

// exampleServers starts a gRPC server on each IP, on one port.
func exampleServers(ips ...string) (int, []*exampleServer) {
	for {
		port, servers, err := tryServers(ips)
		if err == nil {
			return port, servers
		}
	}
}

func tryServers(ips []string) (int, []*exampleServer, error) {
	port := 0
	var servers []*exampleServer
	for _, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			for _, s := range servers {
				s.Stop()
			}
			return 0, nil, err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		s := &exampleServer{ip: netip.MustParseAddr(ip), srv: grpc.NewServer(), health: grpchealth.NewServer(), done: make(chan struct{})}
		testgrpc.RegisterTestServiceServer(s.srv, s)
		healthpb.RegisterHealthServer(s.srv, s.health)
		go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
		servers = append(servers, s)
	}
	return port, servers, nil
}
