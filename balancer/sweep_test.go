package balancer

import (
	"net/http"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

func (t *Transport) hasPool(a resolver.Address) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.pools[a.Key()] != nil
}

// Sweep closes at once the idle connection of an address that left the
// checker and drops its pool; the idle connection of an address that only
// turned unhealthy is closed too, its pool kept; the others stay open.
func TestTransportSweep(t *testing.T) {
	s1 := startServer(t, "127.0.76.1", nil)
	s2 := startServer(t, "127.0.76.2", nil)
	s3 := startServer(t, "127.0.76.3", nil)
	a1, a2, a3 := s1.address("shop.example"), s2.address("shop.example"), s3.address("shop.example")
	c := newNamedChecker(t, "shop.example", a1, a2, a3)
	tr := NewTransport(New(c), nil)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range 9 { // round robin: three requests each
		if code, err := get(client, s1.url("shop.example", "/")); err != nil || code != http.StatusOK {
			t.Fatalf("GET: %d, %v", code, err)
		}
	}
	for _, s := range []*server{s1, s2, s3} {
		if s.open() != 1 {
			t.Fatalf("%v has %d open connections, want its one idle connection", s.IP, s.open())
		}
	}

	c.SetTargets([]resolver.Address{a1, a3}) // a2 leaves
	setUnhealthy(t, c, a3)                   // a3 stays, unhealthy
	tr.Sweep()
	testutil.Eventually(t, 5*time.Second, "the idle connections of the departed and the unhealthy address to close", func() bool {
		return s2.open() == 0 && s3.open() == 0
	})
	if s1.open() != 1 || s1.closed.Load() != 0 {
		t.Errorf("the remaining candidate's connection: %d open, %d closed; want it left alone", s1.open(), s1.closed.Load())
	}
	if tr.hasPool(a2) {
		t.Error("the pool of the departed address is still there")
	}
	if !tr.hasPool(a3) || !tr.hasPool(a1) {
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
	c := newNamedChecker(t, "shop.example", a2)
	tr := NewTransport(New(c), nil)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		_, err := get(client, s2.url("shop.example", "/slow"))
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, "the slow request to arrive", func() bool { return len(s2.requests()) == 1 })

	c.SetTargets([]resolver.Address{a1}) // a2 leaves while its request is in flight
	tr.Sweep()
	if tr.hasPool(a2) {
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
