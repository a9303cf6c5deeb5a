package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

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

// Concurrent first requests for one new host make exactly one upstream
// (one source: one A query), and every one of them succeeds: none fails
// with "no healthy target" because another request was just building the
// balancer's first snapshot. Twenty hosts, 32 first requests each.
func TestClientConcurrentFirstRequests(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.10.1", 2)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const hosts, perHost = 20, 32
	var fails atomic.Int64
	for h := range hosts {
		name := fmt.Sprintf("crowd%d.internal", h)
		_ = srv.SetA(name, 60, ips(bs)...)
		srv.SetDelay(name, 50*time.Millisecond) // they all arrive while it resolves
		url := fmt.Sprintf("http://%s:%d/", name, bs[0].Port)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range perHost {
			wg.Go(func() {
				<-gate
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if code, err := do(ctx, c.Client, url); err != nil || code != 200 {
					if fails.Add(1) <= 3 {
						t.Errorf("%s: GET: %d, %v", name, code, err)
					}
				}
			})
		}
		close(gate)
		wg.Wait()
		if q := srv.QueriesFor(name, dns.TypeA); q != 1 {
			t.Fatalf("%s: %d A queries: more than one source resolved the name", name, q)
		}
	}
	if ups := c.Upstreams(); len(ups) != hosts {
		t.Fatalf("%d upstreams for %d hosts", len(ups), hosts)
	}
	if n := fails.Load(); n > 0 {
		t.Fatalf("%d of %d first requests failed", n, hosts*perHost)
	}
}

// An upstream made from the template for a request that is still waiting
// for the name's first resolution is not stopped as idle under that
// request: with IdleTimeout shorter than a slow DNS answer, the request
// still gets its answer.
func TestClientIdleStopSparesWaitingRequest(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.11.1", 1)
	_ = srv.SetA("slowidle.internal", 60, ips(bs)...)
	srv.SetDelay("slowidle.internal", 400*time.Millisecond)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		IdleTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, err := do(ctx, c.Client, fmt.Sprintf("http://slowidle.internal:%d/", bs[0].Port))
	if err != nil || code != 200 {
		t.Fatalf("a request waiting for the first resolution while the idle timeout passed: %d, %v", code, err)
	}
}

// Close while a request waits for a name's first resolution: the request
// returns promptly (it must not wait for its own deadline on an upstream
// that was stopped), with ErrClosed.
func TestClientCloseWhileRequestWaits(t *testing.T) {
	srv := dnsServer(t)
	srv.SetDelay("closewait.internal", 800*time.Millisecond)
	_ = srv.SetA("closewait.internal", 60, "127.78.12.1")
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}, Timeout: 3 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := do(ctx, c.Client, "http://closewait.internal:8080/")
		done <- err
	}()
	testutil.Eventually(t, 2*time.Second, "the name to be asked", func() bool { return srv.Queries() > 0 })
	closed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	t.Logf("the waiting request returned %v after Close: %v", time.Since(closed).Round(time.Millisecond), err)
	if !errors.Is(err, vigil.ErrClosed) {
		t.Fatalf("a request waiting at Close: %v; want ErrClosed, promptly", err)
	}
}

// Close racing requests from many goroutines: no panic, every request
// after Close returned fails with ErrClosed, Close is idempotent, and once
// the requests are done no goroutine (upstream, probe, connection) is
// left, with the backends still up.
func TestClientClose(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.13.1", 3)
	for i := range 4 {
		_ = srv.SetA(fmt.Sprintf("race%d.internal", i), 60, ips(bs)...)
	}
	base := runtime.NumGoroutine()
	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{{Name: "race0.internal", Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}}}},
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		IdleTimeout: 30 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		closed  atomic.Bool
		ok, bad atomic.Int64
	)
	for g := range 8 {
		wg.Go(func() {
			url := fmt.Sprintf("http://race%d.internal:%d/", g%4, bs[0].Port)
			for i := 0; i < 2000; i++ {
				after := closed.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				code, err := do(ctx, c.Client, url)
				cancel()
				switch {
				case err == nil && code == 200:
					ok.Add(1)
				case after && !errors.Is(err, vigil.ErrClosed):
					bad.Add(1)
					t.Errorf("a request after Close: %d, %v", code, err)
				}
				if after {
					return
				}
				if i%3 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	testutil.Eventually(t, 5*time.Second, "requests to succeed", func() bool { return ok.Load() > 100 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	wg.Wait()
	if _, err := do(context.Background(), c.Client, fmt.Sprintf("http://race0.internal:%d/", bs[0].Port)); !errors.Is(err, vigil.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	testutil.Eventually(t, 3*time.Second, "every goroutine of the client to end", func() bool {
		return runtime.NumGoroutine() <= base
	})
	if n := c.Bus().Len(); n != 0 {
		t.Fatalf("the bus holds %d topics after Close", n)
	}
}

// Nothing leaks: 200 hosts made from the template, each used once and
// stopped as idle (IdleTimeout 50ms), leave the goroutines where they
// were and the bus without topics.
func TestClientManyIdleUpstreamsLeaveNothing(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.14.1", 2)
	const hosts = 200
	for i := range hosts {
		_ = srv.SetA(fmt.Sprintf("h%d.internal", i), 60, ips(bs)...)
	}
	base := runtime.NumGoroutine()
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:             &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		IdleTimeout:          50 * time.Millisecond,
		MaxTemplateUpstreams: hosts, // the limit is TestClientTemplateLimit's business
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var ok, fails atomic.Int64
	for i := range hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			url := fmt.Sprintf("http://h%d.internal:%d/", i, bs[0].Port)
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if code, err := do(rctx, c.Client, url); err != nil || code != 200 {
				// Failed first requests are other tests' business
				// (TestClientIdleStopSparesWaitingRequest and the
				// Transport's first-request tests); here only what is
				// left behind counts.
				if fails.Add(1) <= 3 {
					t.Logf("GET %s: %d, %v", url, code, err)
				}
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	if ok.Load() < hosts*9/10 {
		t.Fatalf("only %d of %d requests succeeded", ok.Load(), hosts)
	}
	testutil.Eventually(t, 10*time.Second, "every upstream to stop as idle", func() bool {
		return len(c.Upstreams()) == 0 && c.Bus().Len() == 0
	})
	c.CloseIdleConnections()
	testutil.Eventually(t, 10*time.Second, "the goroutines to return to their baseline", func() bool {
		return runtime.NumGoroutine() <= base+1 // the janitor
	})
	t.Logf("%d of %d requests failed; %d goroutines above the baseline, %d topics", fails.Load(), hosts,
		runtime.NumGoroutine()-base, c.Bus().Len())
}

// Hosts is the caller's code: the Client must not hold its lock while it
// runs, or a Hosts that asks the Client which upstreams it runs (to cap
// their number, say) deadlocks every request.
func TestClientHostsMayCallTheClient(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.15.1", 1)
	_ = srv.SetA("capped.internal", 60, ips(bs)...)
	var c *vigil.Client
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		Hosts:    func(string) bool { return len(c.Upstreams()) < 10 },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := do(ctx, c.Client, fmt.Sprintf("http://capped.internal:%d/", bs[0].Port))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		_ = c.Close()
	case <-time.After(2 * time.Second):
		// The client is deadlocked: closing it would hang the test too.
		t.Fatal("a request whose Hosts calls Client.Upstreams deadlocked")
	}
}

// A request routed just before Close that takes its connection after Close
// closed the idle ones leaves no connection open once its body is read:
// nothing could reach that pool any more. The request is held between its
// routing and its connection (httptrace's GetConn) until Close returned;
// the backend counts the connections still open (5 rounds).
func TestClientCloseLeavesNoConnection(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.93.61", 1)
	_ = srv.SetA("closeconn.internal", 60, ips(bs)...)
	url := fmt.Sprintf("http://closeconn.internal:%d/", bs[0].Port)
	for round := range 5 {
		c, err := vigil.NewClient(vigil.ClientConfig{
			Upstreams: []vigil.Config{{Name: "closeconn.internal", Port: bs[0].Port,
				Resolver: resolver.Config{Servers: []string{srv.Addr()}},
				Health:   health.Config{Active: health.Active{Type: health.TCP}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		atConn, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		trace := &httptrace.ClientTrace{GetConn: func(string) {
			once.Do(func() {
				close(atConn)
				<-release
			})
		}}
		ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.Background(), trace), 10*time.Second)
		done := make(chan error, 1)
		go func() {
			code, err := do(ctx, c.Client, url)
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d", code)
			}
			done <- err
		}()
		select {
		case <-atConn:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never asked for a connection")
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("round %d: the request routed before Close: %v", round, err)
		}
		cancel()
		testutil.Eventually(t, 5*time.Second, "every connection to the backend to close", func() bool {
			return bs[0].OpenConns() == 0
		})
	}
}
