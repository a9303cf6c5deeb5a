package vigil_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
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
