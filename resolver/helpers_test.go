package resolver

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startDNS starts an in-process DNS server, closed when the test ends.
func startDNS(t *testing.T) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newBus returns a bus closed when the test ends.
func newBus(t *testing.T) *events.Bus {
	t.Helper()
	b := events.New()
	t.Cleanup(b.Close)
	return b
}

// patience is how long a test polls for what must come: far longer than
// it takes on an idle machine, so that a loaded one (two shared cores, the
// race detector, busy loops) does not fail the test. A poll returns as soon
// as what it waits for holds.
const patience = 15 * time.Second

// fastBackoff makes retries quick enough for tests.
var fastBackoff = withBackoff(20*time.Millisecond, 100*time.Millisecond)

// mustSource returns a Source for cfg with fast retries.
func mustSource(t *testing.T, cfg Config, bus *events.Bus, opts ...Option) *Source {
	t.Helper()
	s, err := NewSource(cfg, bus, append([]Option{fastBackoff}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs s until the test ends; the cleanup checks that Run returns
// nil promptly after cancellation.
func start(t *testing.T, s *Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("Run did not return after cancellation")
		}
	})
}

// recorder keeps every value published on a topic.
type recorder[T any] struct {
	mu   sync.Mutex
	vals []T
}

// record subscribes to every value of the topic named like topic (not
// coalesced, even for state topics) until the test ends.
func record[T any](t *testing.T, bus *events.Bus, topic events.Topic[T]) *recorder[T] {
	r := &recorder[T]{}
	unsub := events.Subscribe(bus, events.NewTopic[T](topic.Name()), func(v T) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.vals = append(r.vals, v)
	})
	t.Cleanup(unsub)
	return r
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.vals)
}

// waitValue waits for a recorded value matching pred and returns it.
func waitValue[T any](t *testing.T, r *recorder[T], timeout time.Duration, what string, pred func(T) bool) T {
	t.Helper()
	var found T
	testutil.Eventually(t, timeout, what, func() bool {
		for _, v := range r.all() {
			if pred(v) {
				found = v
				return true
			}
		}
		return false
	})
	return found
}

// waitChanges waits until at least n Changes were recorded.
func waitChanges(t *testing.T, r *recorder[Change], n int, timeout time.Duration) []Change {
	t.Helper()
	testutil.Eventually(t, timeout, "changes", func() bool { return len(r.all()) >= n })
	return r.all()
}

// waitFailure waits for a Failure whose Err matches target.
func waitFailure(t *testing.T, r *recorder[Failure], target error, timeout time.Duration) Failure {
	t.Helper()
	return waitValue(t, r, timeout, "failure "+target.Error(), func(f Failure) bool { return errors.Is(f.Err, target) })
}

// addrs builds A/AAAA addresses for host and port.
func addrs(host string, port uint16, ips ...string) []Address {
	out := make([]Address, 0, len(ips))
	for _, ip := range ips {
		out = append(out, Address{IP: netip.MustParseAddr(ip), Port: port, Hostname: host})
	}
	Sort(out)
	return out
}

// ips returns the IPs of as, as strings.
func ips(as []Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.IP.String())
	}
	return out
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
