package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// The first request of a freshly started upstream succeeds: it waits for the
// first resolution instead of failing with "no healthy target" (3 runs of 3).
func TestFirstRequestWaitsForResolution(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			srv := dnsServer(t)
			bs := backends(t, fmt.Sprintf("127.0.92.%d", 1+10*i), 2)
			_ = srv.SetA("first.internal", 5, ips(bs)...)
			u, err := vigil.New(vigil.Config{Name: "first.internal", Port: bs[0].Port,
				Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: u.Transport(nil)}
			run(t, u)
			code, err := get(t, c, fmt.Sprintf("http://first.internal:%d/x", bs[0].Port))
			if err != nil || code != 200 {
				t.Fatalf("first request: %d, %v", code, err)
			}
		})
	}
}

// An upstream's Transport sends other hosts to its base, never to the
// upstream's backends: a backend's redirect to another host reaches that
// host, not the backend with that Host header.
func TestTransportSendsOtherHostsToBase(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.51", 1)
	other := backends(t, "127.0.92.61", 1)[0]
	_ = srv.SetA("own.internal", 5, ips(bs)...)
	u, err := vigil.New(vigil.Config{Name: "own.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	c := &http.Client{Transport: u.Transport(nil)}

	// A request for another host, by IP and port, goes to that host.
	if code, err := get(t, c, fmt.Sprintf("http://%s/elsewhere", other.HostPort())); err != nil || code != 200 {
		t.Fatalf("request for another host: %d, %v", code, err)
	}
	// So does one for this name at another port.
	refusing := &refusingBase{}
	wrong := fmt.Sprintf("own.internal:%d", bs[0].Port+1)
	if _, err := get(t, &http.Client{Transport: u.Transport(refusing)}, "http://"+wrong+"/wrongport"); err == nil ||
		!slices.Equal(refusing.asked(), []string{wrong}) {
		t.Fatalf("a request for another port of the name: %v; the base was asked for %v", err, refusing.asked())
	}
	for _, b := range bs {
		if n := b.Paths()["/elsewhere"] + b.Paths()["/wrongport"]; n != 0 {
			t.Fatalf("%d requests for other hosts reached the upstream's backend", n)
		}
	}
	if other.Paths()["/elsewhere"] != 1 {
		t.Fatalf("the other host got %v", other.Paths())
	}
	// A redirect from a backend to another host is followed to that host
	// through the base, not delivered to the backend with that Host header.
	login := fmt.Sprintf("login.other.example:%d", other.Port)
	bs[0].SetStatus(302)
	bs[0].SetMode(backendtest.Redirect)
	bs[0].SetLocation("http://" + login + "/landing")
	base := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, other.HostPort()) // what DNS would say of login.other.example
	}}
	defer base.CloseIdleConnections()
	redirecting := &http.Client{Transport: u.Transport(base)}
	if code, err := get(t, redirecting, fmt.Sprintf("http://own.internal:%d/start", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("redirected request: %d, %v", code, err)
	}
	if n := bs[0].Paths()["/landing"]; n != 0 {
		t.Fatalf("the redirect to another host reached the upstream's backend %d times", n)
	}
	if other.Paths()["/landing"] != 1 || other.Hosts()[login] != 1 {
		t.Fatalf("the other host got %v with hosts %v", other.Paths(), other.Hosts())
	}
}

// Bad input is an error from the constructor naming the field, never a panic.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   vigil.Config
		field string
	}{
		{vigil.Config{Port: 80}, "Name"},
		{vigil.Config{Name: "bad name", Port: 80}, "Name"},
		{vigil.Config{Name: " api.internal", Port: 80}, "Name"},
		{vigil.Config{Name: "api.internal"}, "Port"},
		{vigil.Config{Name: "api.internal", Port: 80, Resolver: resolver.Config{MinTTL: time.Hour, MaxTTL: time.Second}}, "Resolver.MinTTL"},
		{vigil.Config{Name: "api.internal", Port: 80, Resolver: resolver.Config{Servers: []string{"not a server"}}}, "Resolver.Servers[0]"},
		{vigil.Config{Name: "api.internal", Port: 80, Health: health.Config{Active: health.Active{Path: "healthz"}}}, "Health.Active.Path"},
		{vigil.Config{Name: "api.internal", Port: 80, Health: health.Config{Memory: 0, Active: health.Active{Timeout: -1}}}, "Health.Active.Timeout"},
	} {
		_, err := vigil.New(tc.cfg)
		var ce *vigil.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, vigil.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v; want a *ConfigError for %s", tc.cfg, err, tc.field)
		}
	}
	// The parts' own errors stay inspectable.
	_, err := vigil.New(vigil.Config{Name: "api.internal"})
	if !errors.Is(err, resolver.ErrInvalidConfig) {
		t.Errorf("a port of 0: %v does not match resolver.ErrInvalidConfig", err)
	}
}

// WaitReady returns once a target is healthy; when the name cannot be
// resolved it returns at ctx's end with an error wrapping the DNS failure.
func TestWaitReady(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.71", 1)
	_ = srv.SetA("ready.internal", 5, ips(bs)...)
	srv.SetRcode("broken.internal", dns.RcodeServerFailure)
	servers := resolver.Config{Servers: []string{srv.Addr()}}

	u, err := vigil.New(vigil.Config{Name: "ready.internal", Port: bs[0].Port, Resolver: servers})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if a, err := u.Pick(); err != nil || a.IP != bs[0].IP {
		t.Fatalf("Pick: %v, %v", a, err)
	}

	broken, err := vigil.New(vigil.Config{Name: "broken.internal", Port: 80, Resolver: servers})
	if err != nil {
		t.Fatal(err)
	}
	run(t, broken)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = broken.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, resolver.ErrServerFailure) {
		t.Fatalf("WaitReady of a name that fails to resolve: %v; want the deadline and the SERVFAIL", err)
	}
	if _, err := broken.Pick(); !errors.Is(err, balancer.ErrNoHealthy) {
		t.Fatalf("Pick: %v", err)
	}
}

// A request for an upstream whose name cannot be resolved fails with that
// DNS error within its context, not at its deadline.
func TestRequestFailsWithDNSError(t *testing.T) {
	srv := dnsServer(t)
	u, err := vigil.New(vigil.Config{Name: "missing.internal", Port: 80,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://missing.internal/", nil)
	began := time.Now()
	_, err = (&http.Client{Transport: u.Transport(nil)}).Do(req)
	if !errors.Is(err, resolver.ErrNXDomain) {
		t.Fatalf("request for a name without records: %v; want NXDOMAIN", err)
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Fatalf("the request waited %v", d)
	}
}

// Run stops everything it started and releases the upstream's topics on a
// shared bus; one logger covers every part.
func TestRunReleasesEverything(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.81", 2)
	_ = srv.SetA("life.internal", 5, ips(bs)...)
	bus := events.New()
	defer bus.Close()
	var logs testutil.Buffer
	u, err := vigil.New(vigil.Config{Name: "Life.Internal.", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}}, vigil.WithBus(bus), vigil.WithLogger(newLogger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	if u.Name() != "life.internal" {
		t.Fatalf("name %q, want it normalized", u.Name())
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	if err := u.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := u.Run(ctx); !errors.Is(err, vigil.ErrRunning) || !strings.Contains(err.Error(), "life.internal") {
		t.Fatalf("a second Run: %v; want ErrRunning naming the upstream", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := bus.Len(); n != 0 {
		t.Fatalf("the bus holds %d topics after Run", n)
	}
	testutil.Eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	for _, want := range []string{"resolver:", "health:"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("one logger does not cover %s: %s", want, logs.String())
		}
	}
}

// When DNS stops answering with an address, the idle connection the
// Transport pooled to it is closed at once, with no further request (and
// the checker's probes never hold one open).
func TestRemovedAddressConnectionsClosed(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.91", 2)
	_ = srv.SetA("conns.internal", 0, ips(bs)...)
	u, err := vigil.New(vigil.Config{Name: "conns.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	c := &http.Client{Transport: u.Transport(nil)}
	url := fmt.Sprintf("http://conns.internal:%d/", bs[0].Port)
	testutil.Eventually(t, 5*time.Second, "a pooled connection to each backend", func() bool {
		_, _ = get(t, c, url)
		return bs[0].Paths()["/"] > 0 && bs[1].OpenConns() > 0 && bs[0].OpenConns() > 0
	})
	_ = srv.SetA("conns.internal", 0, bs[0].IP.String())
	gone := bs[1].Address("conns.internal")
	testutil.Eventually(t, 10*time.Second, "the checker to drop the removed address", func() bool {
		_, ok := u.Checker().Target(gone)
		return !ok
	})
	testutil.Eventually(t, 2*time.Second, "the removed address's connections to close", func() bool {
		return bs[1].OpenConns() == 0
	})
	if n := bs[0].OpenConns(); n == 0 {
		t.Fatal("the kept address lost its pooled connection too")
	}
}

// WithBus puts every part's events on the bus, the balancer's Results too:
// a metrics collector there counts requests.
func TestWithBusCarriesResults(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.101", 1)
	_ = srv.SetA("results.internal", 5, ips(bs)...)
	bus := events.New()
	defer bus.Close()
	results := make(chan balancer.Result, 16)
	defer events.Subscribe(bus, balancer.ResultTopic("results.internal"), func(r balancer.Result) { results <- r })()
	u, err := vigil.New(vigil.Config{Name: "results.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}}, vigil.WithBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	c := &http.Client{Transport: u.Transport(nil)}
	if code, err := get(t, c, fmt.Sprintf("http://results.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("request: %d, %v", code, err)
	}
	select {
	case r := <-results:
		if r.Outcome != balancer.HTTPStatus(200) {
			t.Fatalf("result %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Result on the upstream's bus")
	}
}

// A request through the Transport of an upstream whose Run was never
// called fails, naming the upstream and saying that Run was not called,
// instead of waiting for its context to end; so does WaitReady.
func TestRequestWithoutRun(t *testing.T) {
	srv := dnsServer(t)
	_ = srv.SetA("norun.internal", 60, "127.0.92.111")
	u, err := vigil.New(vigil.Config{Name: "norun.internal", Port: 8080,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	base := &refusingBase{}
	c := &http.Client{Transport: u.Transport(base)}
	// A deadline far past RunStartTimeout: only the error may end the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = do(ctx, c, "http://norun.internal:8080/")
	if !errors.Is(err, vigil.ErrNotRunning) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request for an upstream never run: %v; want ErrNotRunning before the deadline", err)
	}
	for _, want := range []string{"norun.internal:8080", "Run was not called"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if err := u.WaitReady(ctx); !errors.Is(err, vigil.ErrNotRunning) {
		t.Fatalf("WaitReady of an upstream never run: %v; want ErrNotRunning", err)
	}
	if n := srv.Queries(); n != 0 || len(base.asked()) != 0 {
		t.Fatalf("%d DNS queries, base asked for %v: nothing should have been sent", n, base.asked())
	}
}

// A request made right after `go u.Run(ctx)`, or a little before Run
// starts, is served: it waits for Run to start (20 rounds each).
func TestRequestRightAfterRun(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.121", 1)
	_ = srv.SetA("soon.internal", 60, ips(bs)...)
	url := fmt.Sprintf("http://soon.internal:%d/", bs[0].Port)
	for _, late := range []time.Duration{0, 100 * time.Millisecond} {
		for i := range 20 {
			u, err := vigil.New(vigil.Config{Name: "soon.internal", Port: bs[0].Port,
				Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: u.Transport(nil)}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			start := func() { go func() { done <- u.Run(ctx) }() }
			if late == 0 {
				start()
			} else {
				time.AfterFunc(late, start)
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			code, err := do(rctx, c, url)
			rcancel()
			c.CloseIdleConnections()
			cancel()
			if rerr := <-done; rerr != nil {
				t.Fatalf("Run: %v", rerr)
			}
			if err != nil || code != 200 {
				t.Fatalf("Run started %v after the request, round %d: %d, %v", late, i, code, err)
			}
		}
	}
}

// An upstream whose config names no check probes with a TCP connect, so a
// backend with no route at "/" (404) stays healthy and its traffic flows;
// probing HTTP needs a Path.
func TestDefaultProbeIsTCP(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.92.131", 2)
	for _, b := range bs {
		b.SetPathStatus("/", 404)
	}
	_ = srv.SetA("noroot.internal", 60, ips(bs)...)
	u, err := vigil.New(vigil.Config{Name: "noroot.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}},
		Health: health.Config{Active: health.Active{
			Healthy:   health.HealthyRules{Interval: 20 * time.Millisecond},
			Unhealthy: health.UnhealthyRules{Interval: 20 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	if typ := u.Checker().Config().Active.Type; typ != health.TCP {
		t.Fatalf("the default probe is %v, want tcp", typ)
	}
	run(t, u)
	// Ten probes of each address: GET / would have turned both unhealthy
	// after five.
	testutil.Eventually(t, 10*time.Second, "20 probes", func() bool { return u.Checker().Stats().ProbesCompleted >= 20 })
	for _, tg := range u.Checker().Targets() {
		if tg.Status != health.Healthy {
			t.Errorf("%v is %v (%s)", tg.Address, tg.Status, tg.Reason)
		}
	}
	for _, b := range bs {
		if n := b.Paths()["/"]; n != 0 {
			t.Errorf("%d probes asked %v for /", n, b.IP)
		}
	}
	c := &http.Client{Transport: u.Transport(nil)}
	if code, err := get(t, c, fmt.Sprintf("http://noroot.internal:%d/v1/items", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("request: %d, %v", code, err)
	}
}

// What each probe configuration probes, and the settings that need a Path.
func TestProbeChoice(t *testing.T) {
	prober := health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) { return health.ProbeSuccess, "" })
	for _, tc := range []struct {
		name     string
		active   health.Active
		want     health.ProbeType
		wantPath string
		field    string // the *ConfigError's field; "" no error
	}{
		{"nothing: a TCP connect", health.Active{}, health.TCP, "/", ""},
		{"a path: HTTP", health.Active{Path: "/healthz"}, health.HTTP, "/healthz", ""},
		{"HTTPS without a path: GET /", health.Active{Type: health.HTTPS}, health.HTTPS, "/", ""},
		{"TCP", health.Active{Type: health.TCP}, health.TCP, "/", ""},
		{"a prober", health.Active{Prober: prober}, health.HTTP, "/", ""},
		{"headers without a path", health.Active{Headers: http.Header{"X-Probe": {"1"}}}, 0, "", "Health.Active.Path"},
		{"an expected body without a path", health.Active{ExpectBody: "ok"}, 0, "", "Health.Active.Path"},
		{"a Host without a path", health.Active{Host: "api.example"}, 0, "", "Health.Active.Path"},
		{"headers with a path", health.Active{Path: "/h", Headers: http.Header{"X-Probe": {"1"}}}, health.HTTP, "/h", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := vigil.New(vigil.Config{Name: "probe.internal", Port: 80, Health: health.Config{Active: tc.active}})
			if tc.field != "" {
				var ce *vigil.ConfigError
				if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Reason, "Path") {
					t.Fatalf("New: %v; want a *ConfigError for %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := u.Checker().Config().Active
			if a.Type != tc.want || a.Path != tc.wantPath {
				t.Fatalf("probes %v %s, want %v %s", a.Type, a.Path, tc.want, tc.wantPath)
			}
		})
	}
}
