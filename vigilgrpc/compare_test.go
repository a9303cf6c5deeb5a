package vigilgrpc_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// grpcGoConfig is grpc-go's round_robin with client-side health checking.
const grpcGoConfig = `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`

// compareClient is one client of the comparison.
type compareClient struct {
	name string
	cc   *grpc.ClientConn
	chk  *health.Checker // vigil's; nil for grpc-go
}

// compareClients dials name:port four ways against one DNS server:
// grpc-go's dns resolver with round_robin and health checking, and vigil
// with its defaults (the health watch, and probes every 1s that act on the
// fifth NOT_SERVING), with its probes alone, and with probes every 50ms
// that act on the first NOT_SERVING.
func compareClients(t *testing.T, d *dnstest.Server, name string, port uint16) []compareClient {
	target := name + ":" + itoa(port)
	grpcGo, err := grpc.NewClient("dns://"+d.Addr()+"/"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(grpcGoConfig))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = grpcGo.Close() })
	out := []compareClient{{name: "grpc-go dns + round_robin + health", cc: grpcGo}}
	defaults := vigil.Config{Resolver: resolver.Config{Servers: []string{d.Addr()}}}
	for _, v := range []struct {
		name string
		tmpl vigil.Config
		opts []vigilgrpc.Option
	}{
		{"vigil, defaults (watch + probes)", defaults, nil},
		{"vigil, probes alone (1s, 5 failures)", defaults, []vigilgrpc.Option{vigilgrpc.WithHealthWatch(false)}},
		{"vigil, probes alone (50ms, 1 failure)", template(d), []vigilgrpc.Option{vigilgrpc.WithHealthWatch(false)}},
	} {
		b := newBuilder(t, v.tmpl, v.opts...)
		cc := dial(t, b, "vigil:///"+target)
		out = append(out, compareClient{name: v.name, cc: cc, chk: upstreamOf(t, cc, b, "vigil:///"+target)})
	}
	return out
}

func upstreamOf(t *testing.T, cc *grpc.ClientConn, b interface {
	Upstream(string) (*vigil.Upstream, bool)
}, target string) *health.Checker {
	cc.Connect()
	var u *vigil.Upstream
	testutil.Eventually(t, 5*time.Second, "the upstream of "+target, func() bool {
		var ok bool
		u, ok = b.Upstream(target)
		return ok
	})
	return u.Checker()
}

// TestCompareWithDNSResolver measures, side by side in one run, what
// docs/grpc.md reports: how long a new address waits for its first RPC
// after a DNS change (TTL 1s), and how many RPCs reach a backend after it
// turned NOT_SERVING, also while its address leaves the set and returns.
// It takes about a minute: grpc-go's run is bounded at 40s.
func TestCompareWithDNSResolver(t *testing.T) {
	if os.Getenv("VIGIL_GRPC_COMPARE") == "" {
		t.Skip("set VIGIL_GRPC_COMPARE=1 to compare with grpc-go's dns resolver (about a minute)")
	}
	t.Run("new address", compareNewAddress)
	t.Run("NOT_SERVING", compareNotServing)
}

func compareNewAddress(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.85.1", 2, backendOpts{})
	if err := d.SetA("new.internal", 1, bs[0].IP.String()); err != nil {
		t.Fatal(err)
	}
	clients := compareClients(t, d, "new.internal", bs[0].Port)
	for _, c := range clients {
		if _, err := call(context.Background(), c.cc, grpc.WaitForReady(true)); err != nil {
			t.Fatal(c.name, err)
		}
	}
	const bound = 40 * time.Second
	changed := time.Now()
	if err := d.SetA("new.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	firsts := make([]time.Duration, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			for time.Since(changed) < bound {
				if ip, err := call(context.Background(), c.cc); err == nil && ip == bs[1].IP {
					firsts[i] = time.Since(changed)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for i, c := range clients {
		if firsts[i] == 0 {
			t.Logf("%-40s first RPC to the new address: none within %v", c.name, bound)
			continue
		}
		t.Logf("%-40s first RPC to the new address: %v after the change", c.name, firsts[i].Round(time.Millisecond))
	}
}

func compareNotServing(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.86.1", 3, backendOpts{})
	if err := d.SetA("ns.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	clients := compareClients(t, d, "ns.internal", bs[0].Port)
	bad := bs[2]
	a := bad.Address("ns.internal")
	for _, c := range clients {
		waitServed(t, c.cc, bs)
	}

	// Every client sends RPCs on 2 goroutines; each RPC notes whether it
	// started after the backend turned NOT_SERVING and after the client's
	// vigil held it unhealthy.
	var flipped atomic.Bool
	type counts struct{ rpcs, afterFlip, afterVerdict, changeWindow atomic.Int64 }
	var inChange atomic.Bool
	cs := make([]counts, len(clients))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					afterFlip := flipped.Load()
					verdict := c.chk != nil && c.chk.Status(a) == health.Unhealthy
					changing := inChange.Load()
					ip, err := call(context.Background(), c.cc)
					cs[i].rpcs.Add(1)
					if err != nil || ip != bad.IP {
						continue
					}
					if afterFlip {
						cs[i].afterFlip.Add(1)
					}
					if verdict {
						cs[i].afterVerdict.Add(1)
					}
					if changing {
						cs[i].changeWindow.Add(1)
					}
				}
			})
		}
	}
	time.Sleep(500 * time.Millisecond) // traffic on every backend before the flip
	bad.SetServing(false)
	flipped.Store(true)
	flippedAt := time.Now()
	detected := make([]time.Duration, len(clients))
	testutil.Eventually(t, 20*time.Second, "every vigil client to hold the backend unhealthy", func() bool {
		all := true
		for i, c := range clients {
			if c.chk == nil || detected[i] != 0 {
				continue
			}
			if c.chk.Status(a) == health.Unhealthy {
				detected[i] = time.Since(flippedAt)
			} else {
				all = false
			}
		}
		return all
	})
	time.Sleep(time.Second)

	// The address leaves the set and comes back, still NOT_SERVING.
	inChange.Store(true)
	if err := d.SetA("ns.internal", 1, bs[0].IP.String(), bs[1].IP.String()); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[1:] {
		testutil.Eventually(t, 10*time.Second, "the address to leave", func() bool { _, ok := c.chk.Target(a); return !ok })
	}
	if err := d.SetA("ns.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[1:] {
		testutil.Eventually(t, 10*time.Second, "the address to return", func() bool { _, ok := c.chk.Target(a); return ok })
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for i, c := range clients {
		if c.chk == nil {
			t.Logf("%-40s RPCs %6d; to the backend after NOT_SERVING %4d; during the address change %d (a change it does not see)",
				c.name, cs[i].rpcs.Load(), cs[i].afterFlip.Load(), cs[i].changeWindow.Load())
			continue
		}
		t.Logf("%-40s RPCs %6d; to the backend after NOT_SERVING %4d; held unhealthy after %v; after that %d; during the address change %d",
			c.name, cs[i].rpcs.Load(), cs[i].afterFlip.Load(), detected[i].Round(time.Millisecond),
			cs[i].afterVerdict.Load(), cs[i].changeWindow.Load())
		if n := cs[i].afterVerdict.Load(); n != 0 {
			t.Errorf("%s: %d RPCs reached the backend after vigil held it unhealthy", c.name, n)
		}
	}
}
