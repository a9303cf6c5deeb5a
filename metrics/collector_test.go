package metrics

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

func newBus(t *testing.T) *events.Bus {
	t.Helper()
	b := events.New()
	t.Cleanup(b.Close)
	return b
}

func testAddr(i byte) resolver.Address {
	return resolver.Address{IP: netip.AddrFrom4([4]byte{192, 0, 2, i}), Port: 80, Hostname: "api.example"}
}

func probe(i int) health.ProbeResult {
	return health.ProbeResult{Name: "api", Address: testAddr(1), Outcome: health.ProbeSuccess,
		StatusCode: 200, Duration: time.Duration(i) * time.Millisecond}
}

// A value published before Watch, which the bus retains and hands to a new
// subscriber, is not counted; everything published after is.
func TestWatchSkipsRetainedValue(t *testing.T) {
	bus := newBus(t)
	events.Publish(bus, health.ProbeTopic("api"), probe(1))
	events.Publish(bus, resolver.QueryTopic("api"), resolver.Query{Name: "api", Type: "A", Err: resolver.ErrTimeout})
	col := New(bus)
	t.Cleanup(col.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	col.Watch("api")
	col.Watch("api") // a second Watch changes nothing

	events.Publish(bus, health.ProbeTopic("api"), probe(2))
	events.Publish(bus, health.ProbeTopic("api"), probe(3))
	events.Publish(bus, resolver.QueryTopic("api"), resolver.Query{Name: "api", Type: "A", Duration: time.Millisecond})
	waitValue(t, reg, "two probes", equals(2), "vigil_probes_total", "outcome", "success")
	waitValue(t, reg, "one query", equals(1), "vigil_dns_queries_total", "result", "ok")
	time.Sleep(20 * time.Millisecond)
	if v, _ := value(t, reg, "vigil_probes_total"); v != 2 {
		t.Errorf("probes = %v, want 2: the retained one was counted", v)
	}
	if v, _ := value(t, reg, "vigil_dns_queries_total"); v != 1 {
		t.Errorf("queries = %v, want 1", v)
	}
}

// After Close nothing more is counted, Watch does nothing, and the series
// collected so far stay.
func TestClose(t *testing.T) {
	bus := newBus(t)
	col := New(bus)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	col.Watch("api")
	events.Publish(bus, health.StatusTopic("api"), health.StatusChange{Name: "api", Address: testAddr(1), From: health.Healthy, To: health.Unhealthy})
	waitValue(t, reg, "a transition", equals(1), "vigil_status_transitions_total", "to", "unhealthy")
	col.Close()
	col.Close()
	col.Watch("other")
	events.Publish(bus, health.StatusTopic("api"), health.StatusChange{Name: "api", Address: testAddr(1), From: health.Unhealthy, To: health.Healthy})
	events.Publish(bus, health.StatusTopic("other"), health.StatusChange{Name: "other", Address: testAddr(1), From: health.Healthy, To: health.Unhealthy})
	time.Sleep(20 * time.Millisecond)
	if v, _ := value(t, reg, "vigil_status_transitions_total"); v != 1 {
		t.Errorf("transitions = %v after Close, want 1", v)
	}
}

// Picks carry the address label unless WithoutAddressLabels; requests are
// counted by outcome class.
func TestPicks(t *testing.T) {
	for _, perTarget := range []bool{true, false} {
		t.Run(fmt.Sprint("perTarget=", perTarget), func(t *testing.T) {
			bus := newBus(t)
			var opts []Option
			if !perTarget {
				opts = append(opts, WithoutAddressLabels())
			}
			col := New(bus, opts...)
			t.Cleanup(col.Close)
			checker, err := health.NewChecker(health.Config{Name: "api"}, bus)
			if err != nil {
				t.Fatal(err)
			}
			checker.SetTargets([]resolver.Address{testAddr(1), testAddr(2)})
			col.AddChecker(checker)
			reg := prometheus.NewRegistry()
			reg.MustRegister(col)

			pub := func(i byte, o balancer.Outcome) {
				events.Publish(bus, balancer.ResultTopic("api"), balancer.Result{Name: "api", Address: testAddr(i), Outcome: o})
			}
			pub(1, balancer.HTTPStatus(200))
			pub(1, balancer.HTTPStatus(503))
			pub(2, balancer.ConnFailure)
			waitValue(t, reg, "three requests", equals(3), "vigil_requests_total")
			for outcome, want := range map[string]float64{"2xx": 1, "5xx": 1, "conn_failure": 1} {
				if v, _ := value(t, reg, "vigil_requests_total", "outcome", outcome); v != want {
					t.Errorf("requests{outcome=%s} = %v, want %v", outcome, v, want)
				}
			}
			_, perAddr := value(t, reg, "vigil_picks_total", "address", testAddr(1).String())
			_, healthGauge := value(t, reg, "vigil_target_healthy")
			if perAddr != perTarget || healthGauge != perTarget {
				t.Errorf("per-target series: picks %v, target_healthy %v; want %v", perAddr, healthGauge, perTarget)
			}
			if perTarget {
				if v, _ := value(t, reg, "vigil_picks_total", "address", testAddr(1).String()); v != 2 {
					t.Errorf("picks of %v = %v, want 2", testAddr(1), v)
				}
			} else if v, _ := value(t, reg, "vigil_picks_total", "upstream", "api"); v != 3 {
				t.Errorf("picks = %v, want 3", v)
			}
			if v, _ := value(t, reg, "vigil_targets", "status", "healthy"); v != 2 {
				t.Errorf("healthy targets = %v, want 2", v)
			}
		})
	}
}

// The metrics pass Prometheus's lint and register without conflicts next to
// the standard collectors.
func TestLint(t *testing.T) {
	bus := newBus(t)
	col := New(bus)
	t.Cleanup(col.Close)
	checker, err := health.NewChecker(health.Config{Name: "api"}, bus)
	if err != nil {
		t.Fatal(err)
	}
	checker.SetTargets([]resolver.Address{testAddr(1)})
	col.AddChecker(checker)
	events.Publish(bus, health.ProbeTopic("api"), probe(1))
	events.Publish(bus, health.ProbeTopic("api"), probe(2))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col, collectors.NewGoCollector())
	waitValue(t, reg, "two probes", equals(2), "vigil_probes_total")
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
