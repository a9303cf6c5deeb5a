package balancer

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/resolver"
)

// retryRig is an upstream of a refused address and a live server; the
// checker never turns the refused one unhealthy, so that it keeps being
// picked.
type retryRig struct {
	refused resolver.Address
	live    *server
	checker *health.Checker
}

func newRetryRig(t *testing.T, refusedIP, liveIP string) *retryRig {
	t.Helper()
	port, err := backendtest.RefusedPort(netip.MustParseAddr(refusedIP))
	if err != nil {
		t.Fatal(err)
	}
	r := &retryRig{
		refused: resolver.Address{IP: netip.MustParseAddr(refusedIP), Port: port, Hostname: "shop.example"},
		live:    startServer(t, liveIP, nil),
	}
	cfg := passiveConfig("shop.example")
	cfg.Passive.Unhealthy.TCPFailures = 1000
	if r.checker, err = health.NewChecker(cfg, nil); err != nil {
		t.Fatal(err)
	}
	r.checker.SetTargets([]resolver.Address{r.refused, r.live.address("shop.example")})
	return r
}

func (r *retryRig) client(t *testing.T, b *Balancer, opts ...TransportOption) *http.Client {
	t.Helper()
	tr := NewTransport(b, nil, opts...)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func (r *retryRig) url() string { return r.live.url("shop.example", "/") }

// A request whose dial is refused goes to the other address, under every
// policy (Random would draw the refused one again half of the time), with
// or without a replayable body; each refusal is reported.
func TestTransportRetriesRefusedDial(t *testing.T) {
	for i, p := range []Policy{RoundRobin, Random, LeastRequest, PeakEWMA} {
		t.Run(p.String(), func(t *testing.T) {
			r := newRetryRig(t, "127.0.75."+strconv.Itoa(1+2*i), "127.0.75."+strconv.Itoa(2+2*i))
			b := New(r.checker, WithPolicy(p))
			rec := record(b)
			client := r.client(t, b)
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
				resp, err := client.Do(req)
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
			refusals := 0
			for _, s := range rec.reports() {
				if s == "tcp failure "+r.refused.String() {
					refusals++
				}
			}
			tg, _ := r.checker.Target(r.refused)
			if refusals == 0 || tg.PassiveCounts.TCPFailures != refusals {
				t.Errorf("%d refusals reported, the checker counts %d TCP failures; want the same, more than 0",
					refusals, tg.PassiveCounts.TCPFailures)
			}
		})
	}
}

// WithTries(1) turns retries off: the refused requests fail.
func TestTransportWithTriesOne(t *testing.T) {
	r := newRetryRig(t, "127.0.75.21", "127.0.75.22")
	client := r.client(t, New(r.checker), WithTries(1))
	failed := 0
	for range 10 {
		if _, err := get(client, r.url()); err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("error %v, want connection refused", err)
			}
			failed++
		}
	}
	if failed != 5 {
		t.Errorf("%d of 10 requests failed, want the 5 round robin sent to the refused address", failed)
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
	b := New(r.checker)
	rec := record(b)
	client := r.client(t, b, WithTries(3))
	failed, ok := 0, 0
	for range 10 {
		req, err := http.NewRequest(http.MethodPost, r.url(), opaqueBody{strings.NewReader("once")})
		if err != nil {
			t.Fatal(err)
		}
		if req.GetBody != nil {
			t.Fatal("the body is replayable: the test shows nothing")
		}
		resp, err := client.Do(req)
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
	if failed != 5 || ok != 5 {
		t.Errorf("%d failed, %d succeeded; want 5 and 5 (no retry)", failed, ok)
	}
	if got := len(r.live.requests()); got != ok {
		t.Errorf("the live server received %d requests, want the %d that succeeded", got, ok)
	}
	if n := len(rec.reports()); n != 10 {
		t.Errorf("%d reports for 10 single tries: %q", n, rec.reports())
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
	cfg := passiveConfig("shop.example")
	cfg.Passive.Unhealthy.TCPFailures = 1000
	c, err := health.NewChecker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets([]resolver.Address{reset.Address("shop.example"), live.Address("shop.example")})
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = ca.ClientConfig()
	tr := NewTransport(New(c, WithPolicy(Random)), base)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "https://shop.example:" + strconv.Itoa(int(live.Port)) + "/"
	for k := range 20 {
		tr.CloseIdleConnections() // every request dials: a handshake each time
		if code, err := get(client, url); err != nil || code != http.StatusOK {
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

// A 429 or 503 with a Retry-After the checker can read reports
// ReportRetryAfter; without one, or unreadable, ReportHTTPStatus.
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
	cfg := passiveConfig("shop.example")
	cfg.Passive = health.Passive{}
	c, err := health.NewChecker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Five targets on one server: the two Retry-After answers eject two.
	var targets []resolver.Address
	for _, h := range []string{"a", "b", "c", "d", "e"} {
		targets = append(targets, s.address(h+".shop.example"))
	}
	c.SetTargets(targets)
	b := New(c)
	rec := record(b)
	tr := NewTransport(b, nil)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, p := range []string{"/busy", "/limited", "/garbage", "/none", "/teapot"} {
		if _, err := get(client, s.url("shop.example", p)); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.reports()
	if len(got) != 5 {
		t.Fatalf("reports %q, want 5", got)
	}
	if got[0] != "retry-after 503 30s" {
		t.Errorf("503 with Retry-After: 30 reported %q", got[0])
	}
	if !strings.HasPrefix(got[1], "retry-after 429 59m") && !strings.HasPrefix(got[1], "retry-after 429 1h0m0s") {
		t.Errorf("429 with an HTTP date an hour away reported %q", got[1])
	}
	for i, want := range []string{"status 503", "status 503", "status 418"} {
		if got[2+i] != want {
			t.Errorf("report %d = %q, want %q", 2+i, got[2+i], want)
		}
	}
	if n := c.Stats().Ejected; n != 2 {
		t.Errorf("%d targets ejected, want the 2 that answered with Retry-After", n)
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
	cfg := passiveConfig("shop.example")
	cfg.Passive.Unhealthy.TCPFailures = 1000
	c, err := health.NewChecker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets([]resolver.Address{bs[0].Address("shop.example"), bs[1].Address("shop.example")})
	tr := NewTransport(New(c), nil, WithTries(3))
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	failed := 0
	for range 10 {
		if _, err := get(client, url); err != nil {
			failed++
		}
	}
	if failed != 5 || bs[0].Requests() != 5 || bs[1].Requests() != 5 {
		t.Errorf("%d of 10 failed; the resetting backend received %d, the other %d; want 5, 5, 5 (no retry)",
			failed, bs[0].Requests(), bs[1].Requests())
	}
}
