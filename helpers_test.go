package vigil_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// ips returns the IPs of bs as strings.
func ips(bs []*backendtest.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.IP.String()
	}
	return out
}
