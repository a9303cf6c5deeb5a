package vigilotel

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

var target = resolver.Address{IP: netip.MustParseAddr("192.0.2.1"), Port: 80, Hostname: "api.example"}

func TestNewRejectsNilProvider(t *testing.T) {
	m, err := New(newBus(t), nil)
	if m != nil || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(bus, nil) = %v, %v; want an error matching ErrInvalidConfig", m, err)
	}
	if want := "vigilotel: invalid config: MeterProvider: nil"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// After Close nothing more is recorded, the callback is gone, and Watch
// does nothing; Close is idempotent.
func TestClose(t *testing.T) {
	bus := newBus(t)
	m, r := newMetrics(t, bus)
	m.Watch("api.example")
	probe := health.ProbeResult{Name: "api.example", Address: target, Outcome: health.ProbeSuccess, Duration: time.Millisecond}
	events.Publish(bus, health.ProbeTopic("api.example"), probe)
	events.Publish(bus, health.StatusTopic("api.example"), health.StatusChange{Name: "api.example", From: health.Healthy, To: health.Unhealthy})
	r.waitValue(t, "a probe", equals(1), "vigil.probe.duration")
	r.waitValue(t, "a status change", equals(1), "vigil.target.status_changes")
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	m.Watch("other.example")
	events.Publish(bus, health.ProbeTopic("api.example"), probe)
	events.Publish(bus, health.ProbeTopic("other.example"), probe)
	time.Sleep(20 * time.Millisecond)
	ms := r.collect(t)
	if v, _ := value(ms, "vigil.probe.duration"); v != 1 {
		t.Errorf("probes recorded = %v after Close, want 1", v)
	}
	if _, ok := ms["vigil.target.status_changes"]; ok {
		t.Error("the callback still reports after Close")
	}
}

// Unwatch drops an upstream from the observable instruments and stops
// recording its events; the other upstreams stay.
func TestUnwatch(t *testing.T) {
	bus := newBus(t)
	m, r := newMetrics(t, bus)
	for _, name := range []string{"a.example", "b.example"} {
		m.Watch(name)
		events.Publish(bus, balancer.ResultTopic(name), balancer.Result{Name: name, Address: target, Outcome: balancer.Success})
	}
	r.waitValue(t, "two requests", equals(2), "vigil.requests")
	m.Unwatch("A.example.")
	if v, _ := value(r.collect(t), "vigil.requests"); v != 1 {
		t.Errorf("requests = %v after Unwatch, want b.example's 1", v)
	}
	events.Publish(bus, health.ProbeTopic("a.example"), health.ProbeResult{Name: "a.example", Outcome: health.ProbeSuccess})
	time.Sleep(20 * time.Millisecond)
	if _, ok := value(r.collect(t), "vigil.probe.duration"); ok {
		t.Error("a probe of the unwatched upstream was recorded")
	}
}

// WithoutTargetAttributes reports nothing per target.
func TestWithoutTargetAttributes(t *testing.T) {
	for _, perTarget := range []bool{true, false} {
		bus := newBus(t)
		var opts []Option
		if !perTarget {
			opts = append(opts, WithoutTargetAttributes())
		}
		m, r := newMetrics(t, bus, opts...)
		m.Watch("api.example")
		events.Publish(bus, balancer.ResultTopic("api.example"), balancer.Result{Name: "api.example", Address: target, Outcome: balancer.HTTPStatus(200)})
		r.waitValue(t, "a request", equals(1), "vigil.requests")
		if _, ok := value(r.collect(t), "vigil.target.requests"); ok != perTarget {
			t.Errorf("per target %v: vigil.target.requests reported %v", perTarget, ok)
		}
	}
}
