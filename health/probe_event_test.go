package health

import (
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// ProbeOutcome converts from the checker's outcomes by value.
func TestProbeOutcomeMatchesOutcome(t *testing.T) {
	pairs := []struct {
		o    outcome
		want ProbeOutcome
		name string
	}{
		{ignored, ProbeIgnored, "ignored"},
		{success, ProbeSuccess, "success"},
		{httpFailure, ProbeHTTPFailure, "http_failure"},
		{tcpFailure, ProbeTCPFailure, "tcp_failure"},
		{timeout, ProbeTimeout, "timeout"},
	}
	for _, p := range pairs {
		if got := ProbeOutcome(p.o); got != p.want || got.String() != p.name {
			t.Errorf("ProbeOutcome(%d) = %v (%q), want %v (%q)", p.o, got, got.String(), p.want, p.name)
		}
	}
}

// resultLog records the ProbeResults of one upstream.
type resultLog struct {
	mu  sync.Mutex
	res []ProbeResult
}

func (l *resultLog) find(match func(ProbeResult) bool) (ProbeResult, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.res {
		if match(r) {
			return r, true
		}
	}
	return ProbeResult{}, false
}

// Every applied probe is published on ProbeTopic with its target, type,
// outcome, status code and duration.
func TestProbeTopic(t *testing.T) {
	bus := newBus(t)
	bs := backends(t, "127.0.50.1", 2, nil)
	bs[1].SetStatus(500)
	ln, err := backendtest.ListenTCP(mustIP("127.0.50.3"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })

	l := &resultLog{}
	unsub := events.Subscribe(bus, ProbeTopic("ev"), func(r ProbeResult) {
		l.mu.Lock()
		l.res = append(l.res, r)
		l.mu.Unlock()
	})
	t.Cleanup(unsub)

	ok, failing := bs[0].Address("ok.test"), bs[1].Address("bad.test")
	c := newChecker(t, fast("ev", 20*time.Millisecond), bus, nil)
	c.SetTargets([]resolver.Address{ok, failing})
	start(t, c)

	want := func(what string, a resolver.Address, typ ProbeType, o ProbeOutcome, code int) {
		t.Helper()
		var got ProbeResult
		testutil.Eventually(t, 5*time.Second, what, func() bool {
			var found bool
			got, found = l.find(func(r ProbeResult) bool { return r.Address == a && r.Type == typ })
			return found
		})
		if got.Name != "ev" || got.Outcome != o || got.StatusCode != code {
			t.Errorf("%s: got %+v, want name ev, outcome %v, status %d", what, got, o, code)
		}
		if got.Duration <= 0 || got.Duration > 5*time.Second {
			t.Errorf("%s: duration %v out of range", what, got.Duration)
		}
	}
	want("a passing HTTP probe", ok, HTTP, ProbeSuccess, 200)
	want("a failing HTTP probe", failing, HTTP, ProbeHTTPFailure, 500)

	// TCP probes report no status code.
	cfg := fast("ev", 20*time.Millisecond)
	cfg.Active.Type = TCP
	if err := c.Update(cfg); err != nil {
		t.Fatal(err)
	}
	tcp := ln.Address("tcp.test")
	c.SetTargets([]resolver.Address{tcp})
	want("a TCP probe", tcp, TCP, ProbeSuccess, 0)

	// The results published match the probes the checker counted.
	if n, done := len(l.snapshot()), c.Stats().ProbesCompleted; uint64(n) > done {
		t.Errorf("%d results published, but only %d probes completed", n, done)
	}
}

func (l *resultLog) snapshot() []ProbeResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ProbeResult(nil), l.res...)
}

// BenchmarkProbePublish is the cost one probe pays for its ProbeResult: on
// a bus where nobody subscribes to the topic, and with one subscriber.
func BenchmarkProbePublish(b *testing.B) {
	c, err := NewChecker(Config{Name: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	a := resolver.Address{IP: mustIP("127.0.50.9"), Port: 8080, Hostname: "svc.test"}
	b.Run("no-bus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.publishProbe(a, HTTP, probed{o: success, code: 200, reason: "HTTP 200"}, time.Millisecond)
		}
	})
	b.Run("no-subscriber", func(b *testing.B) {
		c.bus = events.New()
		defer func() { c.bus.Close(); c.bus = nil }()
		b.ReportAllocs()
		for b.Loop() {
			c.publishProbe(a, HTTP, probed{o: success, code: 200, reason: "HTTP 200"}, time.Millisecond)
		}
	})
	b.Run("one-subscriber", func(b *testing.B) {
		c.bus = events.New()
		defer func() { c.bus.Close(); c.bus = nil }()
		var n int
		unsub := events.Subscribe(c.bus, ProbeTopic("bench"), func(ProbeResult) { n++ })
		defer unsub()
		b.ReportAllocs()
		for b.Loop() {
			c.publishProbe(a, HTTP, probed{o: success, code: 200, reason: "HTTP 200"}, time.Millisecond)
		}
	})
}
