package vigil_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

// dnsServer starts an in-process DNS server for the test.
func dnsServer(t testing.TB) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends starts n loopback HTTP backends on one port from first.
func backends(t testing.TB, first string, n int) []*backendtest.Backend {
	t.Helper()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	return bs
}

// ips returns the IPs of bs as strings.
func ips(bs []*backendtest.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.IP.String()
	}
	return out
}

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

// get sends a GET for url, reads and closes the body, and returns the
// status.
func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	return do(context.Background(), c, url)
}

// do sends a GET for url within ctx, reads and closes the body, and returns
// the status.
func do(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// newLogger logs everything, as JSON, to w.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// refusingBase is a base RoundTripper that records the hosts it is asked
// for and fails them all, so that no name is looked up beyond the test.
type refusingBase struct {
	mu    sync.Mutex
	hosts []string
}

func (b *refusingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.hosts = append(b.hosts, req.URL.Host)
	b.mu.Unlock()
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, errors.New("refused by the test's base")
}

func (b *refusingBase) asked() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.hosts)
}
