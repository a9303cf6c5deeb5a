package health

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast is a configuration probing every iv with small thresholds.
func fast(name string, iv time.Duration) Config {
	return Config{
		Name: name,
		Active: Active{
			Timeout:   500 * time.Millisecond,
			Healthy:   HealthyRules{Interval: iv, Successes: 2},
			Unhealthy: UnhealthyRules{Interval: iv, HTTPFailures: 2, TCPFailures: 2, Timeouts: 2},
		},
	}
}

// passiveOnly is a configuration without active probes.
func passiveOnly(name string) Config {
	return Config{Name: name, Active: Active{
		Healthy:   HealthyRules{Interval: -1},
		Unhealthy: UnhealthyRules{Interval: -1},
	}}
}

// newChecker builds a checker; hook, if not nil, runs (under the checker's
// lock) just before each probe's I/O.
func newChecker(t *testing.T, cfg Config, bus *events.Bus, hook func(*target), opts ...Option) *Checker {
	t.Helper()
	c, err := NewChecker(cfg, bus, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.onProbeStart = hook
	return c
}

// start runs c until the test ends and checks that Run returns nil.
func start(t *testing.T, c *Checker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// newBus returns a bus closed when the test ends (after checkers stop,
// since cleanups run last-in first-out).
func newBus(t *testing.T) *events.Bus {
	b := events.New()
	t.Cleanup(b.Close)
	return b
}

// backends starts n HTTP backends from first (127.0.0.0/8).
func backends(t *testing.T, first string, n int, ca *backendtest.CA) []*backendtest.Backend {
	t.Helper()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	return bs
}

// eventLog records the StatusChanges of one upstream.
type eventLog struct {
	mu  sync.Mutex
	evs []StatusChange
}

func recordEvents(t *testing.T, bus *events.Bus, name string) *eventLog {
	l := &eventLog{}
	unsub := events.Subscribe(bus, StatusTopic(name), func(e StatusChange) {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
	})
	t.Cleanup(unsub)
	return l
}

func (l *eventLog) all() []StatusChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// to returns the events for a that went to s.
func (l *eventLog) to(a resolver.Address, s Status) []StatusChange {
	var out []StatusChange
	for _, e := range l.all() {
		if e.Address.Key() == a.Key() && e.To == s {
			out = append(out, e)
		}
	}
	return out
}

// addrsOf returns the addresses of ts.
func addrsOf(ts []Target) []resolver.Address {
	out := make([]resolver.Address, len(ts))
	for i, t := range ts {
		out[i] = t.Address
	}
	return out
}

// sorted returns a sorted copy of as.
func sorted(as []resolver.Address) []resolver.Address {
	out := slices.Clone(as)
	resolver.Sort(out)
	return out
}

// publish sends a Change for name and waits until the checker has seen it
// (applied or ignored).
func publish(t *testing.T, bus *events.Bus, c *Checker, v uint64, addrs ...resolver.Address) {
	t.Helper()
	before := c.Stats()
	events.Publish(bus, resolver.Topic(c.name), resolver.Change{Name: c.name, Version: v, Addresses: sorted(addrs)})
	testutil.Eventually(t, 2*time.Second, "the change to be seen", func() bool {
		s := c.Stats()
		return s.ChangesApplied+s.ChangesIgnored > before.ChangesApplied+before.ChangesIgnored
	})
}

// probeLog records probe starts per target key.
type probeLog struct {
	mu     sync.Mutex
	starts map[resolver.Key][]time.Time
}

func newProbeLog() *probeLog { return &probeLog{starts: make(map[resolver.Key][]time.Time)} }

func (p *probeLog) hook(t *target) {
	p.mu.Lock()
	p.starts[t.addr.Key()] = append(p.starts[t.addr.Key()], t.state.lastProbe)
	p.mu.Unlock()
}

func (p *probeLog) of(a resolver.Address) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.starts[a.Key()])
}

func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// run performs the probe described by sp against addr and returns its outcome.
func (c *Checker) run(ctx context.Context, sp spec, addr resolver.Address) outcome {
	res := c.runProbe(ctx, sp, addr, nil)
	closeConn(res.conn)
	return res.o
}

// newCA returns a test CA when on, else nil.
func newCA(t *testing.T, on bool) *backendtest.CA {
	t.Helper()
	if !on {
		return nil
	}
	ca, err := backendtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
