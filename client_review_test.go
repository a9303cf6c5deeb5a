package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
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

// do sends a GET for url within ctx and returns its status or error.
func do(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Concurrent first requests for one new host make exactly one upstream
// (one source: one A query), and every one of them succeeds: none fails
// with "no healthy target" because another request was just building the
// balancer's first snapshot. Twenty hosts, 32 first requests each.
func TestReviewClientConcurrentFirstRequests(t *testing.T) {
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
func TestReviewIdleStopDoesNotStrandWaitingRequest(t *testing.T) {
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
func TestReviewCloseWhileRequestWaits(t *testing.T) {
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
// after Close returned fails with ErrClosed, and once the requests are
// done no goroutine (upstream, probe, connection) is left, with the
// backends still up.
func TestReviewCloseRacingRequests(t *testing.T) {
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
	testutil.Eventually(t, 3*time.Second, "every goroutine of the client to end", func() bool {
		return runtime.NumGoroutine() <= base
	})
	if n := c.Bus().Len(); n != 0 {
		t.Fatalf("the bus holds %d topics after Close", n)
	}
}

// Bad configuration is an error naming the field, never a panic; hosts
// the Client cannot serve go to the base.
func TestReviewClientBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   vigil.ClientConfig
		field string
	}{
		{"template probe path without slash", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "healthz"}}}}, "Template.Health.Active.Path"},
		{"template probe path with a space", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "/health z"}}}}, "Template.Health.Active.Path"},
		{"template probe path with a fragment", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "/h#x"}}}}, "Template.Health.Active.Path"},
		{"template bad resolver", vigil.ClientConfig{Template: &vigil.Config{
			Resolver: resolver.Config{Servers: []string{"::::"}}}}, "Template.Resolver.Servers[0]"},
		{"template negative memory is fine, bad Initial is not", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Initial: health.Status(9)}}}, "Template.Health.Initial"},
		{"upstream port 0", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "p.internal"}}}, "Upstreams[0].Port"},
		{"upstream without name", vigil.ClientConfig{Upstreams: []vigil.Config{{Port: 80}}}, "Upstreams[0].Name"},
		{"upstream name with a space", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "a b", Port: 80}}}, "Upstreams[0].Name"},
		{"upstream twice in other spellings", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "x.internal", Port: 80},
			{Name: "X.Internal.", Port: 80}}}, "Upstreams[1].Name"},
		{"upstream bad probe header", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "h.internal", Port: 80,
			Health: health.Config{Active: health.Active{Headers: http.Header{"Bad Name": {"v"}}}}}}}, "Upstreams[0].Health.Active.Headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic: %v", p)
				}
			}()
			c, err := vigil.NewClient(tc.cfg)
			if c != nil {
				defer c.Close()
			}
			var ce *vigil.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, vigil.ErrInvalidConfig) {
				t.Fatalf("NewClient: %v; want a *ConfigError for %s", err, tc.field)
			}
		})
	}
}

// Nothing leaks: 200 hosts made from the template, each used once and
// stopped as idle (IdleTimeout 50ms), leave the goroutines where they
// were and the bus without topics.
func TestReviewManyTemplateUpstreamsComeAndGo(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.14.1", 2)
	const hosts = 200
	for i := range hosts {
		_ = srv.SetA(fmt.Sprintf("h%d.internal", i), 60, ips(bs)...)
	}
	base := runtime.NumGoroutine()
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:    &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		IdleTimeout: 50 * time.Millisecond,
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
				// (TestReviewFirstRequestOfFreshUpstreams,
				// TestReviewIdleStopDoesNotStrandWaitingRequest); here only
				// what is left behind counts.
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
func TestReviewHostsMayCallTheClient(t *testing.T) {
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
