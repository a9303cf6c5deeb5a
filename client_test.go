package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A Client makes an upstream from its template on the first request for a
// host, waits for its first resolution within the request, and sends hosts
// it does not serve (an IP address, a host Hosts refuses) to the base.
func TestClientTemplate(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.1", 2)
	plain := backends(t, "127.0.93.11", 1)[0]
	_ = srv.SetA("svc-a.internal", 5, ips(bs)...)
	base := &refusingBase{}
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		Hosts:    func(h string) bool { return h != "skip.internal" },
		Base:     base,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url := fmt.Sprintf("http://svc-a.internal:%d/v1", bs[0].Port)
	if code, err := get(t, c.Client, url); err != nil || code != 200 {
		t.Fatalf("first request for a new host: %d, %v", code, err)
	}
	up, ok := c.Upstream(fmt.Sprintf("svc-a.internal:%d", bs[0].Port))
	if !ok || len(c.Upstreams()) != 1 {
		t.Fatalf("no upstream for the host, or not one: %v", c.Upstreams())
	}
	if n := len(up.Checker().Targets()); n != 2 {
		t.Fatalf("the upstream has %d targets, want 2", n)
	}
	// An IP address goes to the base, and so does a host the template does
	// not serve.
	_, _ = get(t, c.Client, "http://"+plain.HostPort()+"/direct")
	_, _ = get(t, c.Client, "http://skip.internal:1/")
	if got := base.asked(); !slices.Equal(got, []string{plain.HostPort(), "skip.internal:1"}) || len(c.Upstreams()) != 1 {
		t.Fatalf("the base was asked for %v; upstreams %v", got, c.Upstreams())
	}
	if n := plain.Requests(); n != 0 {
		t.Fatalf("%d requests reached the IP's backend past the base", n)
	}
}

// A request for a host whose name cannot be resolved fails with that DNS
// error; the other hosts are not affected.
func TestClientUnresolvableHost(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.21", 1)
	_ = srv.SetA("good.internal", 5, ips(bs)...)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://nowhere.internal:%d/", bs[0].Port), nil)
	if _, err := c.Do(req); !errors.Is(err, resolver.ErrNXDomain) {
		t.Fatalf("request for an unknown name: %v; want NXDOMAIN", err)
	}
	if code, err := get(t, c.Client, fmt.Sprintf("http://good.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("another host after it: %d, %v", code, err)
	}
}

// Upstreams made from the template stop after IdleTimeout without a
// request: their goroutines end and the bus keeps none of their topics. A
// later request makes the upstream anew.
func TestClientStopsIdleUpstreams(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.31", 1)
	_ = srv.SetA("idle.internal", 5, ips(bs)...)
	base := runtime.NumGoroutine()
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		IdleTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url := fmt.Sprintf("http://idle.internal:%d/", bs[0].Port)
	for range 2 {
		if code, err := get(t, c.Client, url); err != nil || code != 200 {
			t.Fatalf("request: %d, %v", code, err)
		}
		if len(c.Upstreams()) != 1 {
			t.Fatal("no upstream while in use")
		}
		testutil.Eventually(t, 5*time.Second, "the idle upstream to stop", func() bool {
			return len(c.Upstreams()) == 0 && c.Bus().Len() == 0
		})
		c.CloseIdleConnections()
		testutil.Eventually(t, 5*time.Second, "its goroutines to end", func() bool {
			return runtime.NumGoroutine() <= base+1 // the janitor
		})
	}
}

// After Close every upstream has stopped (the goroutine check after the
// tests finds none) and requests fail with ErrClosed.
func TestClientClose(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.41", 1)
	_ = srv.SetA("closing.internal", 5, ips(bs)...)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{{Name: "closing.internal", Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://closing.internal:%d/", bs[0].Port)
	if code, err := get(t, c.Client, url); err != nil || code != 200 {
		t.Fatalf("request: %d, %v", code, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c.Client, url); !errors.Is(err, vigil.ErrClosed) {
		t.Fatalf("request after Close: %v", err)
	}
	_ = c.Close() // idempotent
}

// 100 upstreams of 10 targets each run on a few hundred goroutines: three
// per upstream (Run, its source, its checker) while no probe is in flight.
// The probe connections kept between probes cost none on the client's
// side; the in-process backends' server goroutines, one per open
// connection, are counted apart.
func TestManyUpstreamsFewGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 1,000 targets")
	}
	srv := dnsServer(t)
	bs := backends(t, "127.0.94.1", 10)
	var ups []vigil.Config
	for i := range 100 {
		name := fmt.Sprintf("many-%d.internal", i)
		_ = srv.SetA(name, 60, ips(bs)...)
		ups = append(ups, vigil.Config{Name: name, Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}},
			Health:   health.Config{Active: health.Active{Healthy: health.HealthyRules{Interval: time.Hour}}}})
	}
	base := runtime.NumGoroutine()
	c, err := vigil.NewClient(vigil.ClientConfig{Upstreams: ups})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.Eventually(t, 20*time.Second, "every target probed once", func() bool {
		for _, u := range c.Upstreams() {
			if u.Checker().Stats().ProbesCompleted < 10 {
				return false
			}
		}
		return true
	})
	open := func() (n int) {
		for _, b := range bs {
			n += int(b.OpenConns())
		}
		return n
	}
	testutil.Eventually(t, 10*time.Second, "goroutines to settle", func() bool {
		return runtime.NumGoroutine()-base-open() <= 3*100+10
	})
	t.Logf("%d goroutines for 100 upstreams of 10 targets (%d server goroutines of the backends apart)",
		runtime.NumGoroutine()-base-open(), open())
}

// closeCountingBase is a base RoundTripper that counts CloseIdleConnections.
type closeCountingBase struct {
	refusingBase
	closes atomic.Int64
}

func (b *closeCountingBase) CloseIdleConnections() { b.closes.Add(1) }

// The Client's CloseIdleConnections (the embedded http.Client's) closes the
// idle pooled connections of its upstreams and asks its base to do the same.
func TestClientCloseIdleConnections(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.51", 1)
	_ = srv.SetA("idleconns.internal", 5, ips(bs)...)
	base := &closeCountingBase{}
	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{{Name: "idleconns.internal", Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}},
			// TCP probes keep no connection: only the traffic's pool holds one.
			Health: health.Config{Active: health.Active{Type: health.TCP}}}},
		Base: base,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := get(t, c.Client, fmt.Sprintf("http://idleconns.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("request: %d, %v", code, err)
	}
	testutil.Eventually(t, 5*time.Second, "the pooled connection", func() bool { return bs[0].OpenConns() == 1 })
	c.CloseIdleConnections()
	testutil.Eventually(t, 5*time.Second, "the pooled connection to close", func() bool { return bs[0].OpenConns() == 0 })
	if n := base.closes.Load(); n == 0 {
		t.Fatal("the base was not asked to close its idle connections")
	}
}
