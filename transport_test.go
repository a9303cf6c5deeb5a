package vigil_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// answeringBase is a base RoundTripper that records every request it is
// given (its URL's host and its Host header) and answers 200 itself, so
// that no name is looked up and no connection is made beyond the test.
type answeringBase struct {
	mu   sync.Mutex
	seen []string
}

func (b *answeringBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	b.mu.Lock()
	b.seen = append(b.seen, req.URL.Host+" "+req.URL.Path)
	b.mu.Unlock()
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("from the base")), Request: req}, nil
}

func (b *answeringBase) asked() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// runUpstream builds and runs an upstream for name on srv until the test
// ends.
func runUpstream(t *testing.T, srv *dnstest.Server, name string, port uint16, hc health.Config) *vigil.Upstream {
	t.Helper()
	u, err := vigil.New(vigil.Config{Name: name, Port: port, Health: hc,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	return u
}

// ready waits until u picks a healthy address, so that a test of what
// follows does not meet the first-request race of
// TestReviewFirstRequestOfFreshUpstreams.
func ready(t *testing.T, u *vigil.Upstream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "a pick", func() bool {
		_, err := u.Pick()
		return err == nil
	})
}

// Whatever the request looks like, the Transport sends to the upstream's
// backends only requests whose URL names the upstream's host and port
// (case and a trailing dot aside): redirect chains through other hosts and
// ports, another host with the upstream's name in its Host header,
// userinfo that looks like the upstream, the scheme's default port and IP
// literals all go to the base.
func TestReviewTransportHostRule(t *testing.T) {
	srv := dnsServer(t)
	b := backends(t, "127.78.1.1", 1)[0]
	_ = srv.SetA("up.internal", 60, b.IP.String())
	u := runUpstream(t, srv, "up.internal", b.Port, health.Config{})
	ready(t, u)
	base := &answeringBase{}
	c := &http.Client{Transport: u.Transport(base), Timeout: 10 * time.Second}
	port := fmt.Sprint(b.Port)
	other := fmt.Sprint(b.Port + 1)

	// Redirects: the backend sends every path but /final elsewhere.
	b.SetStatus(302)
	b.SetMode(backendtest.Redirect)
	b.SetPathStatus("/final", 200)
	for _, tc := range []struct {
		name, location string
		wantBackend    string // the path the backend must see after the redirect; "" none
		wantBase       string // what the base must be asked; "" nothing
	}{
		{"to another host", "http://other.internal:" + port + "/next", "", "other.internal:" + port + " /next"},
		{"to another port", "http://up.internal:" + other + "/next", "", "up.internal:" + other + " /next"},
		{"to the default port", "http://up.internal/next", "", "up.internal /next"},
		{"to https on the port", "https://up.internal/next", "", "up.internal /next"},
		{"to an IP literal", "http://" + b.HostPort() + "/next", "", b.HostPort() + " /next"},
		{"to an IPv6 literal", "http://[::1]:" + port + "/next", "", "[::1]:" + port + " /next"},
		{"to userinfo that looks like it", "http://up.internal:" + port + "@other.internal:" + port + "/next", "",
			"other.internal:" + port + " /next"},
		{"to a longer name", "http://up.internal.evil.example:" + port + "/next", "", "up.internal.evil.example:" + port + " /next"},
		{"back to itself, in capitals with a dot", "http://UP.Internal.:" + port + "/final", "/final", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.SetLocation(tc.location)
			before, paths, asked := b.Requests(), b.Paths(), len(base.asked())
			code, err := get(t, c, "http://up.internal:"+port+"/start")
			if err != nil || code != 200 {
				t.Fatalf("GET: %d, %v", code, err)
			}
			if n := b.Paths()["/next"] - paths["/next"]; n != 0 {
				t.Fatalf("the redirect %s reached the upstream's backend", tc.location)
			}
			got := base.asked()[asked:]
			switch {
			case tc.wantBase == "" && len(got) != 0:
				t.Fatalf("the base was asked for %v", got)
			case tc.wantBase != "" && !slices.Equal(got, []string{tc.wantBase}):
				t.Fatalf("the base was asked for %v, want %q", got, tc.wantBase)
			}
			want := int64(1)
			if tc.wantBackend != "" {
				want = 2
				if b.Paths()[tc.wantBackend]-paths[tc.wantBackend] != 1 {
					t.Fatalf("the backend did not get %s", tc.wantBackend)
				}
			}
			if n := b.Requests() - before; n < want || n > want+1 { // +1: a probe
				t.Fatalf("the backend got %d requests, want %d", n, want)
			}
		})
	}
	b.SetMode(backendtest.Normal)
	b.SetStatus(200)

	// A request for another host whose Host header names the upstream goes
	// where its URL says.
	req, _ := http.NewRequest(http.MethodGet, "http://other.internal:"+port+"/spoofed", nil)
	req.Host = "up.internal:" + port
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if n := b.Paths()["/spoofed"]; n != 0 {
		t.Fatalf("a request for other.internal with Host up.internal reached the backend")
	}
	// An absolute-form request as a proxy reads it (its target names
	// another host, its Host header the upstream) goes where its target
	// says.
	raw := "GET http://other.internal:" + port + "/absolute HTTP/1.1\r\nHost: up.internal:" + port + "\r\n\r\n"
	in, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	in.RequestURI = ""
	if resp, err = c.Do(in); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if n := b.Paths()["/absolute"]; n != 0 {
		t.Fatalf("an absolute-form request for other.internal reached the backend")
	}
	if got := base.asked(); got[len(got)-1] != "other.internal:"+port+" /absolute" {
		t.Fatalf("the base was asked for %v", got)
	}
	// Names in capitals and with a trailing dot are the upstream's.
	for _, host := range []string{"UP.INTERNAL:" + port, "up.internal.:" + port, "Up.Internal.:" + port} {
		if code, err := get(t, c, "http://"+host+"/case"); err != nil || code != 200 {
			t.Fatalf("GET %s: %d, %v", host, code, err)
		}
	}
	if n := b.Paths()["/case"]; n != 3 {
		t.Fatalf("the backend got %d of 3 requests for its name in other spellings", n)
	}
}

// The Transport is an http.RoundTripper: a request without a URL is an
// error, not a panic (http.Client checks this itself, a caller of
// RoundTrip may not).
func TestReviewTransportNilURL(t *testing.T) {
	srv := dnsServer(t)
	u := runUpstream(t, srv, "nilurl.internal", 80, health.Config{})
	for name, rt := range map[string]http.RoundTripper{"Upstream.Transport": u.Transport(&answeringBase{})} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("RoundTrip of a request without a URL panicked: %v", p)
				}
			}()
			if _, err := rt.RoundTrip(&http.Request{Method: http.MethodGet, Header: http.Header{}}); err == nil {
				t.Fatal("RoundTrip of a request without a URL succeeded")
			}
		})
	}
	c, err := vigil.NewClient(vigil.ClientConfig{Base: &answeringBase{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Client.Transport.RoundTrip of a request without a URL panicked: %v", p)
			}
		}()
		if _, err := c.Transport.RoundTrip(&http.Request{Method: http.MethodGet, Header: http.Header{}}); err == nil {
			t.Fatal("RoundTrip of a request without a URL succeeded")
		}
	}()
}

// The first request waits for the first resolution (slow DNS); once it
// has, no request waits: with every target unhealthy a request fails at
// once with ErrNoHealthy instead of waiting for one to heal, and so it
// does when DNS then fails.
func TestReviewOnlyTheFirstRequestWaits(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.2.1", 2)
	_ = srv.SetA("wait.internal", 1, ips(bs)...)
	srv.SetDelay("wait.internal", 300*time.Millisecond)
	// Probes every hour: nothing but SetActive moves the active verdicts.
	u := runUpstream(t, srv, "wait.internal", bs[0].Port, health.Config{Active: health.Active{
		Healthy: health.HealthyRules{Interval: time.Hour}, Unhealthy: health.UnhealthyRules{Interval: time.Hour}}})
	c := &http.Client{Transport: u.Transport(nil)}
	url := fmt.Sprintf("http://wait.internal:%d/", bs[0].Port)
	began := time.Now()
	code, err := get(t, c, url)
	if err != nil || code != 200 {
		t.Fatalf("first request: %d, %v", code, err)
	}
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Fatalf("the first request took %v: it did not wait for the slow DNS answer", d)
	}
	srv.SetDelay("wait.internal", 0)
	for _, tg := range u.Checker().Targets() {
		u.Checker().SetActive(tg.Address, health.Unhealthy, "test")
	}
	// A healing would come only from a later SetActive; give the request
	// ample time, so that only waiting could make it succeed.
	heal := time.AfterFunc(500*time.Millisecond, func() {
		for _, tg := range u.Checker().Targets() {
			u.Checker().SetActive(tg.Address, health.Healthy, "test")
		}
	})
	defer heal.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, balancer.ErrNoHealthy) {
		t.Fatalf("with every target unhealthy after the first resolution: %v; want ErrNoHealthy at once", err)
	}
}

// The first request of a freshly started upstream never fails with
// ErrNoHealthy once the first address set is applied (200 fresh upstreams,
// one request each): the upstream's own sweep, rebuilding the balancer's
// snapshot at that change, must not make the request pick from the stale
// empty one.
func TestReviewFirstRequestOfFreshUpstreams(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.78.6.1", 2)
	const rounds = 200
	var failed []string
	for i := range rounds {
		name := fmt.Sprintf("fresh%d.internal", i)
		_ = srv.SetA(name, 60, ips(bs)...)
		u, err := vigil.New(vigil.Config{Name: name, Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		tr := u.Transport(nil)
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", name, bs[0].Port), nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			_ = resp.Body.Close()
		} else {
			failed = append(failed, err.Error())
		}
		rcancel()
		tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d first requests failed, e.g. %s", len(failed), rounds, failed[0])
	}
}

// A request whose context is cancelled while it waits for the first
// resolution returns promptly with the context's error.
func TestReviewCancelWhileWaiting(t *testing.T) {
	srv := dnsServer(t)
	srv.SetDelay("slowdns.internal", time.Second)
	_ = srv.SetA("slowdns.internal", 60, "127.78.3.1")
	u, err := vigil.New(vigil.Config{Name: "slowdns.internal", Port: 80,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}, Timeout: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	c := &http.Client{Transport: u.Transport(&answeringBase{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://slowdns.internal/", nil)
		resp, err := c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	testutil.Eventually(t, 2*time.Second, "the name to be asked", func() bool { return srv.Queries() > 0 })
	time.Sleep(20 * time.Millisecond) // the request is waiting: the answer is a second away
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while waiting: %v; want context.Canceled", err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("a request cancelled while waiting for the first resolution did not return")
	}
}

// WaitReady's error wraps the DNS failure and the context's error, for
// SERVFAIL, REFUSED and NXDOMAIN.
func TestReviewWaitReadyWrapsDNSFailure(t *testing.T) {
	srv := dnsServer(t)
	for _, tc := range []struct {
		name  string
		rcode int
		want  error
	}{
		{"servfail.internal", dns.RcodeServerFailure, resolver.ErrServerFailure},
		{"refused.internal", dns.RcodeRefused, resolver.ErrRefused},
		{"nxdomain.internal", dns.RcodeNameError, resolver.ErrNXDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetRcode(tc.name, tc.rcode)
			u := runUpstream(t, srv, tc.name, 80, health.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := u.WaitReady(ctx)
			if !errors.Is(err, tc.want) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("WaitReady: %v; want it to wrap %v and the deadline", err, tc.want)
			}
		})
	}
}

// Two upstreams of one name on different ports (one bus: a Client's) are
// two upstreams: each keeps the targets of its own port, and a request
// for one port never reaches the backend of the other.
func TestReviewOneNameTwoPorts(t *testing.T) {
	for _, mode := range []string{"template", "configured"} {
		t.Run(mode, func(t *testing.T) {
			srv := dnsServer(t)
			ip := "127.78.4.1"
			if mode == "configured" {
				ip = "127.78.4.2"
			}
			b1, err := backendtest.Start(netip.MustParseAddr(ip), 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b1.Close() })
			b2, err := backendtest.Start(netip.MustParseAddr(ip), 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b2.Close() })
			_ = srv.SetA("dup.internal", 1, ip)
			rc := resolver.Config{Servers: []string{srv.Addr()}}
			cfg := vigil.ClientConfig{Base: &answeringBase{}}
			if mode == "template" {
				cfg.Template = &vigil.Config{Resolver: rc}
			} else {
				cfg.Upstreams = []vigil.Config{{Name: "dup.internal", Port: b1.Port, Resolver: rc},
					{Name: "dup.internal", Port: b2.Port, Resolver: rc}}
			}
			c, err := vigil.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			url1 := fmt.Sprintf("http://dup.internal:%d/one", b1.Port)
			url2 := fmt.Sprintf("http://dup.internal:%d/two", b2.Port)
			if code, err := get(t, c.Client, url1); err != nil || code != 200 {
				t.Fatalf("GET %s: %d, %v", url1, code, err)
			}
			if code, err := get(t, c.Client, url2); err != nil || code != 200 {
				t.Fatalf("GET %s: %d, %v", url2, code, err)
			}
			u1, ok1 := c.Upstream(fmt.Sprintf("dup.internal:%d", b1.Port))
			u2, ok2 := c.Upstream(fmt.Sprintf("dup.internal:%d", b2.Port))
			if !ok1 || !ok2 || u1 == u2 {
				t.Fatalf("upstreams %v %v", u1, u2)
			}
			// Let each source re-resolve (TTL 1s) a few times.
			deadline := time.Now().Add(2500 * time.Millisecond)
			for time.Now().Before(deadline) {
				for _, x := range []struct {
					u    *vigil.Upstream
					port uint16
				}{{u1, b1.Port}, {u2, b2.Port}} {
					for _, tg := range x.u.Checker().Targets() {
						if tg.Address.Port != x.port {
							t.Fatalf("upstream %v holds target %v of the other port", x.u, tg.Address)
						}
					}
				}
				_, _ = get(t, c.Client, url1)
				_, _ = get(t, c.Client, url2)
				time.Sleep(20 * time.Millisecond)
			}
			if n := b2.Paths()["/one"]; n != 0 {
				t.Fatalf("%d requests for port %d reached the backend on port %d", n, b1.Port, b2.Port)
			}
			if n := b1.Paths()["/two"]; n != 0 {
				t.Fatalf("%d requests for port %d reached the backend on port %d", n, b2.Port, b1.Port)
			}
		})
	}
}

// URLs that route nowhere sensible: the request fails or goes to the base,
// never panics and never starts an upstream for a port the URL does not
// name.
func TestReviewClientBadURLs(t *testing.T) {
	srv := dnsServer(t)
	_ = srv.SetA("bad.internal", 60, "127.78.5.1")
	for _, tc := range []struct{ raw, bug string }{
		{"http://bad.internal:99999/", "a port beyond 65535 starts an upstream on port 65535"},
		{"http://bad.internal:65536/", "a port beyond 65535 starts an upstream on port 65535"},
		{"http://bad.internal:0/", ""},
		{"gopher://bad.internal/", ""}, // no port and no default for the scheme
		{"http://127.78.5.1:8080/", ""},
		{"http://[::1]:8080/", ""},
		{"http://[fe80::1%25lo]:8080/", ""},
		{"http://127.78.5.1./", ""},
	} {
		raw := tc.raw
		t.Run(raw, func(t *testing.T) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Skipf("url.Parse: %v", err)
			}
			c, err := vigil.NewClient(vigil.ClientConfig{Base: &answeringBase{},
				Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: u.Host}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v", p)
					}
				}()
				resp, err := c.Transport.RoundTrip(req)
				if err == nil {
					_ = resp.Body.Close()
				}
				t.Logf("%v", err)
			}()
			if ups := c.Upstreams(); len(ups) != 0 {
				t.Fatalf("a request for %s started upstream %v", raw, ups[0])
			}
		})
	}
}

// testServer is a loopback HTTP server that counts the connections it
// accepted and saw closed, and records the Host header and body length of
// every request. Its handler answers 200 unless one is given.
type testServer struct {
	IP   netip.Addr
	Port uint16

	srv    *http.Server
	opened atomic.Int64
	closed atomic.Int64

	mu      sync.Mutex
	handler http.HandlerFunc
	hosts   []string
	bodies  []int
}

func startServer(t *testing.T, ip string, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{IP: netip.MustParseAddr(ip), handler: h}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.opened.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.closed.Add(1)
			}
		},
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.srv.Serve(ln) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = s.srv.Close()
		}
		wg.Wait()
	})
	return s
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.hosts = append(s.hosts, r.Host)
	s.bodies = append(s.bodies, int(n))
	h := s.handler
	s.mu.Unlock()
	if h == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	h(w, r)
}

// requests returns the Host headers received so far, one per request.
func (s *testServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hosts)
}

// bodyLens returns the body length of every request received so far.
func (s *testServer) bodyLens() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// open returns how many of its connections are open.
func (s *testServer) open() int64 { return s.opened.Load() - s.closed.Load() }

func (s *testServer) address(host string) resolver.Address {
	return resolver.Address{IP: s.IP, Port: s.Port, Hostname: host}
}

func (s *testServer) url(host, path string) string {
	return "http://" + host + ":" + strconv.Itoa(int(s.Port)) + path
}

// passiveHealth is a passive-only checker configuration whose statuses the
// traffic and the tests set: one failure of any kind turns a target
// unhealthy, one success healthy.
func passiveHealth() health.Config {
	return health.Config{
		Active: health.Active{
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
		Passive: health.Passive{
			Healthy:   health.HealthyRules{Successes: 1},
			Unhealthy: health.UnhealthyRules{TCPFailures: 1, HTTPFailures: 1, Timeouts: 1},
		},
	}
}

// handUpstream returns an upstream "shop.example" of SRV type (so that any
// port is its own: the targets carry theirs) over targets set by hand; it
// is not running, so that nothing but the test changes its targets.
func handUpstream(t *testing.T, hc health.Config, targets []resolver.Address, bal []balancer.Option, opts ...vigil.Option) *vigil.Upstream {
	t.Helper()
	u, err := vigil.New(vigil.Config{Name: "shop.example", Type: resolver.SRV, Health: hc, Balancer: bal,
		Resolver: resolver.Config{Servers: []string{"127.0.0.1:1"}}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	u.Checker().SetTargets(targets)
	return u
}

// client returns an http.Client over a new Transport of u, whose idle
// connections close when the test ends.
func client(t *testing.T, u *vigil.Upstream, base http.RoundTripper) (*http.Client, http.RoundTripper) {
	t.Helper()
	tr := u.Transport(base)
	t.Cleanup(tr.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

// resultLog records the Results an upstream's balancer publishes.
type resultLog struct {
	mu  sync.Mutex
	res []balancer.Result
}

func recordResults(t *testing.T, u *vigil.Upstream) *resultLog {
	t.Helper()
	l := &resultLog{}
	t.Cleanup(events.Subscribe(u.Bus(), balancer.ResultTopic(u.Name()), func(r balancer.Result) {
		l.mu.Lock()
		l.res = append(l.res, r)
		l.mu.Unlock()
	}))
	return l
}

// wait waits until l holds n results and returns them.
func (l *resultLog) wait(t *testing.T, n int) []balancer.Result {
	t.Helper()
	var out []balancer.Result
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d results", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		out = slices.Clone(l.res)
		return len(out) >= n
	})
	return out
}

// count returns how many of rs are for a with outcome o.
func count(rs []balancer.Result, a resolver.Address, o balancer.Outcome) int {
	n := 0
	for _, r := range rs {
		if r.Address.Key() == a.Key() && r.Outcome == o {
			n++
		}
	}
	return n
}

// groupUpstream starts n loopback backends from first (one port) and a
// passive-only upstream over them that turns a target unhealthy after 3
// HTTP failures or 2 TCP failures or timeouts.
func groupUpstream(t *testing.T, first string, n int, ca *backendtest.CA) ([]*backendtest.Backend, *vigil.Upstream, *http.Client) {
	t.Helper()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	hc := passiveHealth()
	hc.Passive.Unhealthy = health.UnhealthyRules{HTTPFailures: 3, TCPFailures: 2, Timeouts: 2}
	var as []resolver.Address
	for _, b := range bs {
		as = append(as, b.Address("shop.example"))
	}
	var opts []vigil.Option
	if ca != nil {
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.TLSClientConfig = ca.ClientConfig()
		opts = append(opts, vigil.WithHTTPTransport(base))
	}
	u := handUpstream(t, hc, as, nil, opts...)
	c, _ := client(t, u, nil)
	return bs, u, c
}

// A backend that starts answering 500 stops receiving requests once its
// passive failures make it unhealthy, and the Host header and TLS server name
// stay those of the URL.
func TestTransportStopsSendingToFailingBackend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string
		tls   bool
	}{{"http", "127.0.10.1", false}, {"https", "127.0.11.1", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var ca *backendtest.CA
			scheme := "http"
			if tc.tls {
				var err error
				if ca, err = backendtest.NewCA(); err != nil {
					t.Fatal(err)
				}
				scheme = "https"
			}
			bs, u, c := groupUpstream(t, tc.first, 3, ca)
			url := scheme + "://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/cart"
			for range 60 {
				if code, err := get(t, c, url); err != nil || code != 200 {
					t.Fatalf("GET: %d, %v", code, err)
				}
			}
			for _, b := range bs {
				if b.Requests() == 0 {
					t.Fatalf("%s received nothing", b.HostPort())
				}
				if h := b.Hosts(); h["shop.example:"+strconv.Itoa(int(b.Port))] != int(b.Requests()) {
					t.Errorf("%s: Host headers %v, want the URL's host", b.HostPort(), h)
				}
				if tc.tls {
					if s := b.SNIs(); s["shop.example"] == 0 || len(s) != 1 {
						t.Errorf("%s: server names %v, want shop.example", b.HostPort(), s)
					}
				}
			}

			failing := bs[1]
			failing.SetStatus(http.StatusInternalServerError)
			chk := u.Checker()
			deadline := time.Now().Add(5 * time.Second)
			for i := 0; chk.Status(failing.Address("shop.example")) != health.Unhealthy; i++ {
				if i > 1000 || time.Now().After(deadline) {
					t.Fatalf("still %v after %d requests", chk.Status(failing.Address("shop.example")), i)
				}
				if _, err := get(t, c, url); err != nil {
					t.Fatal(err)
				}
			}
			before := failing.Requests()
			others := bs[0].Requests() + bs[2].Requests()
			for range 100 {
				if code, err := get(t, c, url); err != nil || code != 200 {
					t.Fatalf("GET after the failure: %d, %v", code, err)
				}
			}
			if got := failing.Requests(); got != before {
				t.Errorf("the unhealthy backend received %d more requests", got-before)
			}
			if got := bs[0].Requests() + bs[2].Requests(); got-others != 100 {
				t.Errorf("healthy backends received %d of 100 requests", got-others)
			}
		})
	}
}

// A backend that goes away (connection refused) is reported as TCP failures
// and stops being picked; the errors stop once it is unhealthy.
func TestTransportRefusedConnections(t *testing.T) {
	bs, u, c := groupUpstream(t, "127.0.10.11", 2, nil)
	gone := bs[1].Address("shop.example")
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	if err := bs[1].Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; u.Checker().Status(gone) != health.Unhealthy; i++ {
		if i > 100 || time.Now().After(deadline) {
			t.Fatalf("still %v after %d requests", u.Checker().Status(gone), i)
		}
		_, _ = get(t, c, url)
	}
	for range 50 {
		if code, err := get(t, c, url); err != nil || code != 200 {
			t.Fatalf("GET with one backend gone: %d, %v", code, err)
		}
	}
}

// With no healthy target a request fails at once with an error that says
// why: the upstream, its targets and their reasons.
func TestTransportNoHealthySaysWhy(t *testing.T) {
	s := startServer(t, "127.0.10.31", nil)
	a := s.address("shop.example")
	u := handUpstream(t, passiveHealth(), []resolver.Address{a}, nil)
	c, _ := client(t, u, nil)
	if code, err := get(t, c, s.url("shop.example", "/")); err != nil || code != 200 {
		t.Fatalf("GET: %d, %v", code, err)
	}
	u.Checker().SetActive(a, health.Unhealthy, "HTTP 404 from GET /healthz")
	_, err := get(t, c, s.url("shop.example", "/"))
	var nh *balancer.NoHealthyError
	if !errors.Is(err, balancer.ErrNoHealthy) || !errors.As(err, &nh) {
		t.Fatalf("err = %v, want a *balancer.NoHealthyError", err)
	}
	want := `balancer: no healthy target for upstream "shop.example": 1 target, unhealthy: HTTP 404 from GET /healthz (` + a.HostPort() + ")"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		ctx  context.Context
		err  error
		want balancer.Outcome
	}{
		{context.Background(), context.DeadlineExceeded, balancer.Timeout},
		{canceled, context.Canceled, balancer.Ignore},
		{canceled, io.EOF, balancer.Ignore},
		{context.Background(), io.EOF, balancer.ConnFailure},
		{context.Background(), fmt.Errorf("read: %w", io.ErrUnexpectedEOF), balancer.ConnFailure},
		{context.Background(), &net.OpError{Op: "dial", Err: errors.New("no route")}, balancer.ConnFailure},
		{context.Background(), errors.New("something else"), balancer.Ignore},
	}
	for _, tt := range tests {
		if got := vigil.Classify(tt.ctx, tt.err); got != tt.want {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// The pools of addresses that stopped being candidates lose their idle
// connections at the next request.
func TestTransportSweepsIdleConnections(t *testing.T) {
	bs, u, c := groupUpstream(t, "127.0.10.21", 2, nil)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	for range 20 {
		if _, err := get(t, c, url); err != nil {
			t.Fatal(err)
		}
	}
	conns := bs[1].Conns()
	if conns == 0 {
		t.Fatal("no connection to the second backend")
	}
	chk := u.Checker()
	chk.ReportTCPFailure(bs[1].Address("shop.example"))
	chk.ReportTCPFailure(bs[1].Address("shop.example"))
	if _, err := get(t, c, url); err != nil {
		t.Fatal(err)
	}
	chk.ReportSuccess(bs[1].Address("shop.example")) // healthy again: needs a new connection
	deadline := time.Now().Add(5 * time.Second)
	for bs[1].Conns() == conns {
		if time.Now().After(deadline) {
			t.Fatal("the pooled connection to the once unhealthy backend was reused")
		}
		if _, err := get(t, c, url); err != nil {
			t.Fatal(err)
		}
	}
}

// failingBody yields a few bytes, then fails as an upload source does when
// the caller's own client goes away.
type failingBody struct{ sent bool }

func (f *failingBody) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "partial"), nil
	}
	return 0, io.ErrUnexpectedEOF
}

func (f *failingBody) Close() error { return nil }

// A request whose body fails to read is the caller's failure: the backend
// it was sent to is not blamed.
func TestTransportBodyErrorIsNotBackendFailure(t *testing.T) {
	bs, u, c := groupUpstream(t, "127.0.71.1", 1, nil)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/upload"
	for range 3 { // more than the passive TCPFailures threshold (2)
		req, err := http.NewRequest(http.MethodPost, url, &failingBody{})
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 100
		if resp, err := c.Do(req); err == nil {
			_ = resp.Body.Close()
			t.Fatal("a request with a failing body succeeded")
		}
	}
	a := bs[0].Address("shop.example")
	if tg, _ := u.Checker().Target(a); tg.Status != health.Healthy || tg.PassiveCounts.TCPFailures != 0 {
		t.Fatalf("after the caller's body failed: %v with %d TCP failures, want healthy with none", tg.Status, tg.PassiveCounts.TCPFailures)
	}
}

// Sweep closes at once the idle connection of an address that left the
// checker and drops its pool; the idle connection of an address that only
// turned unhealthy is closed too, its pool kept; the others stay open.
func TestTransportSweep(t *testing.T) {
	s1 := startServer(t, "127.0.76.1", nil)
	s2 := startServer(t, "127.0.76.2", nil)
	s3 := startServer(t, "127.0.76.3", nil)
	a1, a2, a3 := s1.address("shop.example"), s2.address("shop.example"), s3.address("shop.example")
	u := handUpstream(t, passiveHealth(), []resolver.Address{a1, a2, a3}, nil)
	c, tr := client(t, u, nil)
	testutil.Eventually(t, 5*time.Second, "a connection to each server", func() bool {
		if code, err := get(t, c, s1.url("shop.example", "/")); err != nil || code != http.StatusOK {
			t.Fatalf("GET: %d, %v", code, err)
		}
		return s1.open() > 0 && s2.open() > 0 && s3.open() > 0
	})
	for _, s := range []*testServer{s1, s2, s3} {
		if s.open() != 1 {
			t.Fatalf("%v has %d open connections, want its one idle connection", s.IP, s.open())
		}
	}

	u.Checker().SetTargets([]resolver.Address{a1, a3}) // a2 leaves
	u.Checker().ReportTCPFailure(a3)                   // a3 stays, unhealthy
	vigil.SweepTransport(tr)
	testutil.Eventually(t, 5*time.Second, "the idle connections of the departed and the unhealthy address to close", func() bool {
		return s2.open() == 0 && s3.open() == 0
	})
	if s1.open() != 1 || s1.closed.Load() != 0 {
		t.Errorf("the remaining candidate's connection: %d open, %d closed; want it left alone", s1.open(), s1.closed.Load())
	}
	if vigil.TransportHasPool(tr, a2) {
		t.Error("the pool of the departed address is still there")
	}
	if !vigil.TransportHasPool(tr, a3) || !vigil.TransportHasPool(tr, a1) {
		t.Error("Sweep dropped the pool of an address that is still a target")
	}
}

// A connection busy when its address left is closed as soon as its request
// is over, not left idle in the dropped pool.
func TestTransportSweepBusyConnection(t *testing.T) {
	release := make(chan struct{})
	s1 := startServer(t, "127.0.76.11", nil)
	s2 := startServer(t, "127.0.76.12", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	a1, a2 := s1.address("shop.example"), s2.address("shop.example")
	u := handUpstream(t, passiveHealth(), []resolver.Address{a2}, nil)
	c, tr := client(t, u, nil)
	done := make(chan error, 1)
	go func() {
		_, err := get(t, c, s2.url("shop.example", "/slow"))
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, "the slow request to arrive", func() bool { return len(s2.requests()) == 1 })

	u.Checker().SetTargets([]resolver.Address{a1}) // a2 leaves while its request is in flight
	vigil.SweepTransport(tr)
	if vigil.TransportHasPool(tr, a2) {
		t.Fatal("the pool of the departed address is still there")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the request in flight failed: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, "the connection to close once its request was over", func() bool {
		return s2.open() == 0
	})
}

// hostRig is an upstream "shop.example" of one loopback server, and another
// loopback server that a base transport reaches whatever host a request
// names.
type hostRig struct {
	be, other *testServer
	base      *http.Transport
}

func newHostRig(t *testing.T, first string, h http.HandlerFunc) *hostRig {
	t.Helper()
	ip := net.ParseIP(first).To4()
	r := &hostRig{be: startServer(t, first, h)}
	ip[3]++
	r.other = startServer(t, ip.String(), nil)
	otherAddr := net.JoinHostPort(r.other.IP.String(), strconv.Itoa(int(r.other.Port)))
	r.base = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, otherAddr)
	}}
	t.Cleanup(r.base.CloseIdleConnections)
	return r
}

// client returns a client over an upstream of the rig's backend: of A
// records on port (any port: 0, which makes it an SRV upstream).
func (r *hostRig) client(t *testing.T, port uint16) *http.Client {
	t.Helper()
	cfg := vigil.Config{Name: "shop.example", Port: port, Health: passiveHealth(),
		Resolver: resolver.Config{Servers: []string{"127.0.0.1:1"}}}
	if port == 0 {
		cfg.Type = resolver.SRV
	}
	u, err := vigil.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u.Checker().SetTargets([]resolver.Address{r.be.address("shop.example")})
	c, _ := client(t, u, r.base)
	return c
}

// A backend's redirect to another host is followed through the base: that
// host's server gets it, with its own Host header, and the upstream's
// backend gets only the request for its own name.
func TestTransportRedirectToOtherHostGoesToBase(t *testing.T) {
	r := newHostRig(t, "127.0.74.1", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "http://login.other.example:9999/welcome", http.StatusFound)
	})
	c := r.client(t, 0)
	code, err := get(t, c, r.be.url("shop.example", "/account"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d, %v", code, err)
	}
	want := "shop.example:" + strconv.Itoa(int(r.be.Port))
	if got := r.be.requests(); !slices.Equal(got, []string{want}) {
		t.Errorf("the upstream's backend received Host headers %q, want only %q", got, want)
	}
	if got := r.other.requests(); !slices.Equal(got, []string{"login.other.example:9999"}) {
		t.Errorf("the other host's server received %q, want the redirect", got)
	}
}

// The hostname is compared normalized; another port goes to the base for an
// A/AAAA upstream and to the upstream for an SRV one.
func TestTransportHostAndPort(t *testing.T) {
	r := newHostRig(t, "127.0.74.11", nil)
	own := strconv.Itoa(int(r.be.Port))
	otherPort := strconv.Itoa(int(r.be.Port) + 1)
	tests := []struct {
		name     string
		port     uint16 // the upstream's; 0: SRV
		url      string
		upstream bool
	}{
		{"own host and port", r.be.Port, "http://shop.example:" + own + "/", true},
		{"case and trailing dot", r.be.Port, "http://SHOP.Example.:" + own + "/", true},
		{"another port", r.be.Port, "http://shop.example:" + otherPort + "/", false},
		{"another port, SRV", 0, "http://shop.example:" + otherPort + "/", true},
		{"another host", 0, "http://shop.example.org:" + own + "/", false},
		{"a sub-domain", 0, "http://www.shop.example:" + own + "/", false},
		{"an address literal", 0, "http://" + r.be.IP.String() + ":" + own + "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.client(t, tt.port)
			be, other := len(r.be.requests()), len(r.other.requests())
			if code, err := get(t, c, tt.url); err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d, %v", tt.url, code, err)
			}
			gotBe, gotOther := len(r.be.requests())-be, len(r.other.requests())-other
			if tt.upstream && (gotBe != 1 || gotOther != 0) {
				t.Errorf("%s reached the backend %d and the base %d times, want the upstream's backend", tt.url, gotBe, gotOther)
			}
			if !tt.upstream && (gotBe != 0 || gotOther != 1) {
				t.Errorf("%s reached the backend %d and the base %d times, want the base", tt.url, gotBe, gotOther)
			}
		})
	}
}

// The port rule uses the scheme's default port when the URL has none.
func TestTransportServes(t *testing.T) {
	tests := []struct {
		port int // 0: SRV, any port
		url  string
		want bool
	}{
		{0, "http://api/", true},
		{0, "https://API.:8443/x", true},
		{80, "http://api/", true},
		{80, "https://api/", false},
		{443, "https://api/", true},
		{443, "https://api:443/", true},
		{80, "ftp://api/", false},
		{8080, "http://api:8080/", true},
		{8080, "http://api:80800/", false},
		{0, "http://api.example/", false},
		{0, "http:///path", false},
	}
	for _, tt := range tests {
		cfg := vigil.Config{Name: "api", Port: uint16(tt.port), Resolver: resolver.Config{Servers: []string{"127.0.0.1:1"}}}
		if tt.port == 0 {
			cfg.Type = resolver.SRV
		}
		u, err := vigil.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		uu, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := vigil.TransportServes(u.Transport(nil), uu); got != tt.want {
			t.Errorf("port %d, %s: serves = %v, want %v", tt.port, tt.url, got, tt.want)
		}
	}
}

// retryRig is an upstream of a refused address and a live server; the
// checker never turns the refused one unhealthy, so that it keeps being
// picked.
type retryRig struct {
	refused resolver.Address
	live    *testServer
	u       *vigil.Upstream
	results *resultLog
}

func newRetryRig(t *testing.T, refusedIP, liveIP string, bal ...balancer.Option) *retryRig {
	t.Helper()
	port, err := backendtest.RefusedPort(netip.MustParseAddr(refusedIP))
	if err != nil {
		t.Fatal(err)
	}
	r := &retryRig{
		refused: resolver.Address{IP: netip.MustParseAddr(refusedIP), Port: port, Hostname: "shop.example"},
		live:    startServer(t, liveIP, nil),
	}
	hc := passiveHealth()
	hc.Passive.Unhealthy.TCPFailures = 1000
	r.u = handUpstream(t, hc, []resolver.Address{r.refused, r.live.address("shop.example")}, bal)
	r.results = recordResults(t, r.u)
	return r
}

func (r *retryRig) url() string { return r.live.url("shop.example", "/") }

// refusals returns how many refused tries were reported, once n results
// (one per try) arrived.
func (r *retryRig) refusals(t *testing.T, n int) int {
	t.Helper()
	return count(r.results.wait(t, n), r.refused, balancer.ConnFailure)
}

// A request whose dial is refused goes to the other address, under every
// policy (Random would draw the refused one again half of the time), with
// or without a replayable body; each refusal is reported.
func TestTransportRetriesRefusedDial(t *testing.T) {
	for i, p := range []balancer.Policy{balancer.RoundRobin, balancer.Random, balancer.LeastRequest, balancer.PeakEWMA} {
		t.Run(p.String(), func(t *testing.T) {
			r := newRetryRig(t, "127.0.75."+strconv.Itoa(1+2*i), "127.0.75."+strconv.Itoa(2+2*i), balancer.WithPolicy(p))
			c, _ := client(t, r.u, nil)
			const n = 40
			for k := range n {
				var req *http.Request
				var err error
				if k%2 == 0 {
					req, err = http.NewRequest(http.MethodGet, r.url(), nil)
				} else { // bytes.Reader: GetBody is set
					req, err = http.NewRequest(http.MethodPost, r.url(), bytes.NewReader([]byte("payload")))
				}
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", k, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			if got := len(r.live.requests()); got != n {
				t.Errorf("the live server received %d of %d requests", got, n)
			}
			for k, l := range r.live.bodyLens() {
				if k%2 == 1 && l != len("payload") {
					t.Errorf("request %d arrived with a body of %d bytes, want %d", k, l, len("payload"))
				}
			}
			tg, _ := r.u.Checker().Target(r.refused)
			refusals := tg.PassiveCounts.TCPFailures
			if got := r.refusals(t, n+refusals); refusals == 0 || got != refusals {
				t.Errorf("%d refusals reported, the checker counts %d TCP failures; want the same, more than 0", got, refusals)
			}
		})
	}
}

// With one try, the refused requests fail: no retry.
func TestTransportOneTry(t *testing.T) {
	r := newRetryRig(t, "127.0.75.21", "127.0.75.22")
	c, tr := client(t, r.u, nil)
	vigil.SetTransportTries(tr, 1)
	failed := 0
	for range 10 {
		if _, err := get(t, c, r.url()); err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("error %v, want connection refused", err)
			}
			failed++
		}
	}
	if refused := r.refusals(t, 10); failed == 0 || failed != refused || len(r.live.requests()) != 10-failed {
		t.Errorf("%d of 10 requests failed, %d tries refused, %d reached the live server; want the refused ones failed, none retried",
			failed, refused, len(r.live.requests()))
	}
}

// opaqueBody is a request body that http.NewRequest cannot replay: GetBody
// stays nil.
type opaqueBody struct{ io.Reader }

func (opaqueBody) Close() error { return nil }

// A request whose body cannot be replayed is not retried, even with another
// address at hand.
func TestTransportNoRetryWithoutReplayableBody(t *testing.T) {
	r := newRetryRig(t, "127.0.75.31", "127.0.75.32")
	c, tr := client(t, r.u, nil)
	vigil.SetTransportTries(tr, 3)
	failed, ok := 0, 0
	for range 10 {
		req, err := http.NewRequest(http.MethodPost, r.url(), opaqueBody{strings.NewReader("once")})
		if err != nil {
			t.Fatal(err)
		}
		if req.GetBody != nil {
			t.Fatal("the body is replayable: the test shows nothing")
		}
		resp, err := c.Do(req)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("error %v, want connection refused", err)
			}
			failed++
			continue
		}
		_ = resp.Body.Close()
		ok++
	}
	if refused := r.refusals(t, 10); failed == 0 || failed != refused || ok != 10-failed {
		t.Errorf("%d failed, %d succeeded, %d tries refused; want every refused one failed (no retry)", failed, ok, refused)
	}
	if got := len(r.live.requests()); got != ok {
		t.Errorf("the live server received %d requests, want the %d that succeeded", got, ok)
	}
	time.Sleep(20 * time.Millisecond) // no more results may arrive
	if n := len(r.results.wait(t, 0)); n != 10 {
		t.Errorf("%d results for 10 single tries", n)
	}
}

// A connection reset during the TLS handshake wrote nothing of the request:
// it goes to the other address.
func TestTransportRetriesTLSHandshakeReset(t *testing.T) {
	ca, err := backendtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	reset, err := backendtest.ListenTCPMode(netip.MustParseAddr("127.0.75.41"), 0, backendtest.ResetAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reset.Close() })
	live, err := backendtest.Start(netip.MustParseAddr("127.0.75.42"), 0, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Close() })
	hc := passiveHealth()
	hc.Passive.Unhealthy.TCPFailures = 1000
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = ca.ClientConfig()
	u := handUpstream(t, hc, []resolver.Address{reset.Address("shop.example"), live.Address("shop.example")},
		[]balancer.Option{balancer.WithPolicy(balancer.Random)}, vigil.WithHTTPTransport(base))
	c, tr := client(t, u, nil)
	url := "https://shop.example:" + strconv.Itoa(int(live.Port)) + "/"
	for k := range 20 {
		tr.(interface{ CloseIdleConnections() }).CloseIdleConnections() // every request dials: a handshake each time
		if code, err := get(t, c, url); err != nil || code != http.StatusOK {
			t.Fatalf("request %d: %d, %v", k, code, err)
		}
	}
	if reset.Accepted() == 0 {
		t.Fatal("no request went to the resetting address: the test shows nothing")
	}
	if got := live.Requests(); got != 20 {
		t.Errorf("the live backend received %d of 20 requests", got)
	}
}

// A 429 or 503 with a Retry-After the checker can read ejects its target
// for the advised time (ReportRetryAfter); without one, or unreadable, it
// counts as its status (ReportHTTPStatus).
func TestTransportRetryAfter(t *testing.T) {
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	s := startServer(t, "127.0.75.51", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/limited":
			w.Header().Set("Retry-After", date)
			w.WriteHeader(http.StatusTooManyRequests)
		case "/garbage":
			w.Header().Set("Retry-After", "soon")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/none":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/teapot":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTeapot)
		}
	})
	hc := passiveHealth()
	hc.Passive = health.Passive{} // defaults: a plain 503 alone ejects nothing
	// Five targets on one server: the two Retry-After answers eject two.
	var targets []resolver.Address
	for _, h := range []string{"a", "b", "c", "d", "e"} {
		targets = append(targets, s.address(h+".shop.example"))
	}
	u := handUpstream(t, hc, targets, nil)
	results := recordResults(t, u)
	c, _ := client(t, u, nil)
	for _, p := range []string{"/busy", "/limited", "/garbage", "/none", "/teapot"} {
		if _, err := get(t, c, s.url("shop.example", p)); err != nil {
			t.Fatal(err)
		}
	}
	var outcomes []balancer.Outcome
	for _, r := range results.wait(t, 5) {
		outcomes = append(outcomes, r.Outcome)
	}
	if want := []balancer.Outcome{503, 429, 503, 503, 418}; !slices.Equal(outcomes, want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
	var reasons []string
	for _, tg := range u.Checker().Targets() {
		if tg.Passive == health.Unhealthy {
			reasons = append(reasons, tg.Reason)
		}
	}
	slices.Sort(reasons)
	if len(reasons) != 2 || !strings.HasPrefix(reasons[0], "HTTP 429 with Retry-After") || reasons[1] != "HTTP 503 with Retry-After 30s" {
		t.Errorf("ejections: %q, want the two that answered with Retry-After", reasons)
	}
}

// A request whose connection broke after it was written (the backend reset
// it on reading the request) is not sent again: the backend may have acted
// on it.
func TestTransportNoRetryAfterWrite(t *testing.T) {
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.75.61"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	bs[0].SetMode(backendtest.Reset)
	hc := passiveHealth()
	hc.Passive.Unhealthy.TCPFailures = 1000
	u := handUpstream(t, hc, []resolver.Address{bs[0].Address("shop.example"), bs[1].Address("shop.example")}, nil)
	c, tr := client(t, u, nil)
	vigil.SetTransportTries(tr, 3)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	failed := 0
	for range 10 {
		if _, err := get(t, c, url); err != nil {
			failed++
		}
	}
	if failed == 0 || int64(failed) != bs[0].Requests() || bs[1].Requests() != int64(10-failed) {
		t.Errorf("%d of 10 failed; the resetting backend received %d, the other %d; want every request to the resetting one failed (no retry)",
			failed, bs[0].Requests(), bs[1].Requests())
	}
}

// Every request publishes its picked address and status on the upstream's
// bus.
func TestTransportPublishesResults(t *testing.T) {
	bs, u, c := groupUpstream(t, "127.0.51.1", 2, nil)
	bs[1].SetStatus(404)
	l := recordResults(t, u)
	const n = 20
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	for range n {
		if _, err := get(t, c, url); err != nil {
			t.Fatal(err)
		}
	}
	want := map[resolver.Key]balancer.Outcome{bs[0].Address("shop.example").Key(): 200, bs[1].Address("shop.example").Key(): 404}
	for _, r := range l.wait(t, n) {
		if w, ok := want[r.Address.Key()]; !ok || r.Outcome != w || r.Name != "shop.example" {
			t.Errorf("result %+v: unexpected address or outcome", r)
		}
	}
}

// Through the Transport, PeakEWMA sends most requests away from a backend
// that answers 100 ms late, where round robin gives it a third of them. The
// time constant is short (500ms), so that a hiccup of a fast backend on a
// loaded machine, which PeakEWMA takes as its new peak, fades within the
// test.
func TestPeakEWMAAvoidsSlowBackend(t *testing.T) {
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.73.1"), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	slow := bs[2]
	slow.SetDelay(100 * time.Millisecond)
	slow.SetMode(backendtest.Slow)
	hc := passiveHealth()
	hc.Passive = health.Passive{} // defaults: nothing here turns a target unhealthy
	var as []resolver.Address
	for _, be := range bs {
		as = append(as, be.Address("shop.example"))
	}
	u := handUpstream(t, hc, as, []balancer.Option{balancer.WithPolicy(balancer.PeakEWMA), balancer.WithEWMADecay(500 * time.Millisecond)})
	c, _ := client(t, u, nil)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"

	const workers, each = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := get(t, c, url); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(workers * each)
	t.Logf("requests: fast %d, %d; slow %d", bs[0].Requests(), bs[1].Requests(), slow.Requests())
	if n := slow.Requests(); n*10 > total {
		t.Errorf("the slow backend received %d of %d requests, want under 10%%", n, total)
	}
	if bs[0].Requests() == 0 || bs[1].Requests() == 0 {
		t.Error("a fast backend received nothing")
	}
	var picks int64
	for _, l := range u.Balancer().Loads() {
		picks += l.Picks
		if l.InFlight != 0 {
			t.Errorf("%v: %d in flight after every request ended", l.Address, l.InFlight)
		}
	}
	if picks != total {
		t.Errorf("Loads counts %d picks for %d requests", picks, total)
	}
}

// wrappedDefault is what an instrumentation library puts in
// http.DefaultTransport: a RoundTripper that is not an *http.Transport.
type wrappedDefault struct {
	http.RoundTripper
	calls atomic.Int64
}

func (w *wrappedDefault) RoundTrip(req *http.Request) (*http.Response, error) {
	w.calls.Add(1)
	return w.RoundTripper.RoundTrip(req)
}

// With http.DefaultTransport wrapped (not an *http.Transport), Transport
// does not panic: its pools start from DefaultTransport's documented
// settings, requests for the upstream reach its backends, and other
// requests go to the wrapper.
func TestTransportWithWrappedDefaultTransport(t *testing.T) {
	orig := http.DefaultTransport
	w := &wrappedDefault{RoundTripper: orig}
	http.DefaultTransport = w
	t.Cleanup(func() { http.DefaultTransport = orig })

	s := startServer(t, "127.0.77.1", nil)
	other := startServer(t, "127.0.77.2", nil)
	u := handUpstream(t, passiveHealth(), []resolver.Address{s.address("shop.example")}, nil)
	var c *http.Client
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Transport panicked with a wrapped http.DefaultTransport: %v", p)
			}
		}()
		c, _ = client(t, u, nil)
	}()
	if code, err := get(t, c, s.url("shop.example", "/")); err != nil || code != 200 {
		t.Fatalf("GET for the upstream: %d, %v", code, err)
	}
	if w.calls.Load() != 0 || len(s.requests()) != 1 {
		t.Fatalf("the upstream's request went to the base (%d calls) or missed its backend", w.calls.Load())
	}
	if code, err := get(t, c, other.url(other.IP.String(), "/")); err != nil || code != 200 {
		t.Fatalf("GET for another host: %d, %v", code, err)
	}
	if w.calls.Load() != 1 || len(other.requests()) != 1 {
		t.Fatalf("another host's request: %d calls of the base, %d requests at its server; want 1 and 1", w.calls.Load(), len(other.requests()))
	}
}

// An upstream made from the template that stops idle closes its own pools'
// connections and nothing of the base's: the base's keep-alive connections
// serve other hosts (with http.DefaultTransport, the whole process). The
// user's CloseIdleConnections still reaches the base.
func TestIdleStopKeepsBaseConnections(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.77.11", 1)
	_ = srv.SetA("idlebase.internal", 5, ips(bs)...)
	base := &closeCountingBase{}
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template: &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}},
			// TCP probes keep no connection: only the traffic's pool holds one.
			Health: health.Config{Active: health.Active{Type: health.TCP}}},
		Base:        base,
		IdleTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := get(t, c.Client, fmt.Sprintf("http://idlebase.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("request: %d, %v", code, err)
	}
	testutil.Eventually(t, 5*time.Second, "the idle upstream to stop", func() bool { return len(c.Upstreams()) == 0 })
	testutil.Eventually(t, 5*time.Second, "its pooled connection to close", func() bool { return bs[0].OpenConns() == 0 })
	if n := base.closes.Load(); n != 0 {
		t.Fatalf("the idle stop of one upstream closed the base's idle connections %d times", n)
	}
	c.CloseIdleConnections()
	if n := base.closes.Load(); n != 1 {
		t.Fatalf("CloseIdleConnections reached the base %d times, want 1", n)
	}
}

// A bad balancer option is a *vigil.ConfigError naming the field under
// "Balancer.", from New, CheckTemplate and NewClient: never a panic, never
// a silent default.
func TestBalancerConfigError(t *testing.T) {
	cfg := vigil.Config{Name: "bad.internal", Port: 80, Balancer: []balancer.Option{balancer.WithPanicThreshold(2)}}
	check := func(what string, err error, field string) {
		t.Helper()
		var ce *vigil.ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, vigil.ErrInvalidConfig) || !errors.Is(err, balancer.ErrInvalidConfig) {
			t.Fatalf("%s: %v, want a *vigil.ConfigError for %s", what, err, field)
		}
	}
	_, err := vigil.New(cfg)
	check("New", err, "Balancer.PanicThreshold")
	if want := "vigil: invalid config: Balancer.PanicThreshold: 2 is outside [0, 1]"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	check("CheckTemplate", vigil.CheckTemplate(cfg), "Template.Balancer.PanicThreshold")
	_, err = vigil.NewClient(vigil.ClientConfig{Upstreams: []vigil.Config{cfg}})
	check("NewClient", err, "Upstreams[0].Balancer.PanicThreshold")
	cfg.Balancer = []balancer.Option{balancer.WithPolicy(balancer.Policy(9))}
	_, err = vigil.New(cfg)
	check("New", err, "Balancer.Policy")
}
