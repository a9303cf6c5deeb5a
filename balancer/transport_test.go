package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/resolver"
)

// e2e starts n loopback backends from first, a passive-only checker over them
// and a client whose Transport picks with the balancer.
func e2e(t *testing.T, first string, n int, ca *backendtest.CA) ([]*backendtest.Backend, *health.Checker, *http.Client, *Transport) {
	t.Helper()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	cfg := passiveConfig("shop.example")
	cfg.Passive.Unhealthy = health.UnhealthyRules{HTTPFailures: 3, TCPFailures: 2, Timeouts: 2}
	c, err := health.NewChecker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var as []resolver.Address
	for _, b := range bs {
		as = append(as, b.Address("shop.example"))
	}
	c.SetTargets(as)
	base := http.DefaultTransport.(*http.Transport).Clone()
	if ca != nil {
		base.TLSClientConfig = ca.ClientConfig()
	}
	tr := NewTransport(New(c), base)
	t.Cleanup(tr.CloseIdleConnections)
	return bs, c, &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

func get(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
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
			bs, c, client, _ := e2e(t, tc.first, 3, ca)
			url := scheme + "://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/cart"
			for range 60 {
				if code, err := get(client, url); err != nil || code != 200 {
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
			deadline := time.Now().Add(5 * time.Second)
			for i := 0; c.Status(failing.Address("shop.example")) != health.Unhealthy; i++ {
				if i > 1000 || time.Now().After(deadline) {
					t.Fatalf("still %v after %d requests", c.Status(failing.Address("shop.example")), i)
				}
				if _, err := get(client, url); err != nil {
					t.Fatal(err)
				}
			}
			before := failing.Requests()
			others := bs[0].Requests() + bs[2].Requests()
			for range 100 {
				if code, err := get(client, url); err != nil || code != 200 {
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
	bs, c, client, _ := e2e(t, "127.0.10.11", 2, nil)
	gone := bs[1].Address("shop.example")
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	if err := bs[1].Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; c.Status(gone) != health.Unhealthy; i++ {
		if i > 100 || time.Now().After(deadline) {
			t.Fatalf("still %v after %d requests", c.Status(gone), i)
		}
		_, _ = get(client, url)
	}
	for range 50 {
		if code, err := get(client, url); err != nil || code != 200 {
			t.Fatalf("GET with one backend gone: %d, %v", code, err)
		}
	}
}

func TestTransportNoHealthy(t *testing.T) {
	c := newChecker(t)
	client := &http.Client{Transport: NewTransport(New(c), nil)}
	_, err := client.Get("http://api/")
	if !errors.Is(err, ErrNoHealthy) {
		t.Fatalf("err = %v, want ErrNoHealthy", err)
	}
}

func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		ctx  context.Context
		err  error
		want Outcome
	}{
		{context.Background(), context.DeadlineExceeded, Timeout},
		{canceled, context.Canceled, Ignore},
		{canceled, io.EOF, Ignore},
		{context.Background(), io.EOF, ConnFailure},
		{context.Background(), fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ConnFailure},
		{context.Background(), errors.New("something else"), Ignore},
	}
	for _, tt := range tests {
		if got := classify(tt.ctx, tt.err); got != tt.want {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// The pools of addresses that stopped being candidates lose their idle
// connections at the next request.
func TestTransportSweepsIdleConnections(t *testing.T) {
	bs, c, client, _ := e2e(t, "127.0.10.21", 2, nil)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/"
	for range 20 {
		if _, err := get(client, url); err != nil {
			t.Fatal(err)
		}
	}
	conns := bs[1].Conns()
	if conns == 0 {
		t.Fatal("no connection to the second backend")
	}
	c.ReportTCPFailure(bs[1].Address("shop.example"))
	c.ReportTCPFailure(bs[1].Address("shop.example"))
	if _, err := get(client, url); err != nil {
		t.Fatal(err)
	}
	c.ReportSuccess(bs[1].Address("shop.example")) // healthy again: needs a new connection
	deadline := time.Now().Add(5 * time.Second)
	for bs[1].Conns() == conns {
		if time.Now().After(deadline) {
			t.Fatal("the pooled connection to the once unhealthy backend was reused")
		}
		if _, err := get(client, url); err != nil {
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
	bs, c, client, _ := e2e(t, "127.0.71.1", 1, nil)
	url := "http://shop.example:" + strconv.Itoa(int(bs[0].Port)) + "/upload"
	for range 3 { // more than the passive TCPFailures threshold (2)
		req, err := http.NewRequest(http.MethodPost, url, &failingBody{})
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 100
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("a request with a failing body succeeded")
		}
	}
	a := bs[0].Address("shop.example")
	if tg, _ := c.Target(a); tg.Status != health.Healthy || tg.TCPFailures != 0 {
		t.Fatalf("after the caller's body failed: %v with %d TCP failures, want healthy with none", tg.Status, tg.TCPFailures)
	}
}
