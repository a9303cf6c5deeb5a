package statuspage_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// probePath is where the test backends are probed.
const probePath = "/healthz"

// world is a name in an in-process DNS server resolving to loopback
// backends, and a running vigil upstream of it.
type world struct {
	dns  *dnstest.Server
	bs   []*backendtest.Backend
	name string
	up   *vigil.Upstream
}

// newWorld starts n backends from first (127.0.X.Y), a DNS server where
// name resolves to them with a 1s TTL, and a running upstream of the name
// probing every 50ms; edit, when not nil, changes its Config first.
func newWorld(t *testing.T, first, name string, n int, edit func(*vigil.Config)) *world {
	t.Helper()
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	w := &world{dns: dns, bs: bs, name: name}
	if err := w.setDNS(bs...); err != nil {
		t.Fatal(err)
	}
	cfg := vigil.Config{
		Name: name,
		Port: bs[0].Port,
		Resolver: resolver.Config{
			Servers: []string{dns.Addr()},
			Family:  resolver.IPv4Only,
			MinTTL:  100 * time.Millisecond,
		},
		Health: health.Config{Active: health.Active{
			Path:      probePath,
			Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond},
			Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond, HTTPFailures: 2},
		}},
	}
	if edit != nil {
		edit(&cfg)
	}
	u, err := vigil.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.up = u
	run(t, u)
	return w
}

// setDNS makes the world's name resolve to bs.
func (w *world) setDNS(bs ...*backendtest.Backend) error {
	var ips []string
	for _, b := range bs {
		ips = append(ips, b.IP.String())
	}
	return w.dns.SetA(w.name, 1, ips...)
}

// addr returns backend i's address as a target of the world's name.
func (w *world) addr(i int) resolver.Address { return w.bs[i].Address(resolver.NormalizeName(w.name)) }

// run runs u until the test ends and checks that Run returns nil.
func run(t *testing.T, u *vigil.Upstream) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// newHandler returns a handler of ups with cfg, failing the test on error.
func newHandler(t *testing.T, ups statuspage.Upstreams, cfg statuspage.Config, opts ...statuspage.Option) *statuspage.Handler {
	t.Helper()
	h, err := statuspage.New(ups, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serve sends h a request and returns the response with its body read.
func serve(t *testing.T, h http.Handler, method, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// acceptJSON is the header of a request for JSON.
var acceptJSON = http.Header{"Accept": {"application/json"}}

// pageOf gets h's JSON and decodes it.
func pageOf(t *testing.T, h http.Handler) (statuspage.Page, string) {
	t.Helper()
	resp, body := serve(t, h, http.MethodGet, "/", acceptJSON)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET with Accept: application/json: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var p statuspage.Page
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, body)
	}
	return p, body
}

// statusOf returns the status the checker of u gives a.
func statusOf(u *vigil.Upstream, a resolver.Address) health.Status { return u.Checker().Status(a) }
