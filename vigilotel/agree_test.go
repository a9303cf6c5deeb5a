package vigilotel

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-go/vigil/metrics"
	"github.com/vigil-go/vigil/resolver"
)

// figures are what an exporter shows of one upstream, keyed alike for
// both: "metric{label=value,...}" → value.
type figures map[string]float64

// promFigures gathers g into figures.
func promFigures(t *testing.T, g prometheus.Gatherer) figures {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := make(figures)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := make(map[string]string)
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
				f[key(mf.GetName()+"_sum", l)] = m.Histogram.GetSampleSum()
			}
			f[key(mf.GetName(), l)] = v
		}
	}
	return f
}

// otelFigures collects r and names its figures as Prometheus does.
func otelFigures(t *testing.T, r *reader) figures {
	t.Helper()
	ms := r.collect(t)
	f := make(figures)
	str := func(p point, k string) string { v, _ := p.attrs.Value(attribute.Key(k)); return v.String() }
	for name, m := range ms {
		for _, p := range points(m) {
			up := str(p, "vigil.upstream.name")
			switch name {
			case "vigil.probe.duration":
				f[key("vigil_probes_total", map[string]string{"upstream": up, "outcome": str(p, "vigil.probe.outcome")})] += p.value
				f[key("vigil_probe_duration_seconds", map[string]string{"upstream": up})] += p.value
				f[key("vigil_probe_duration_seconds_sum", map[string]string{"upstream": up})] += histogramSum(m, p)
			case "dns.lookup.duration":
				result := str(p, "error.type")
				if result == "" {
					result = "ok"
				}
				f[key("vigil_dns_queries_total", map[string]string{"upstream": up, "type": str(p, "vigil.dns.record_type"), "result": result})] += p.value
				f[key("vigil_dns_query_duration_seconds", map[string]string{"upstream": up})] += p.value
				f[key("vigil_dns_query_duration_seconds_sum", map[string]string{"upstream": up})] += histogramSum(m, p)
			case "vigil.target.status_changes":
				f[key("vigil_status_transitions_total", map[string]string{"upstream": up, "to": str(p, "vigil.target.status")})] = p.value
			case "vigil.dns.failures":
				f[key("vigil_dns_failures_total", map[string]string{"upstream": up, "reason": str(p, "error.type")})] = p.value
			case "vigil.requests":
				f[key("vigil_requests_total", map[string]string{"upstream": up, "outcome": str(p, "vigil.request.outcome")})] = p.value
			case "vigil.target.requests":
				port, _ := strconv.Atoi(str(p, "server.port"))
				a := resolver.Address{IP: netip.MustParseAddr(str(p, "network.peer.address")), Port: uint16(port), Hostname: str(p, "server.address")}
				f[key("vigil_picks_total", map[string]string{"upstream": up, "address": a.String()})] = p.value
			case "vigil.dns.address.count":
				f[key("vigil_dns_addresses", map[string]string{"upstream": up})] = p.value
			case "vigil.target.count":
				f[key("vigil_targets", map[string]string{"upstream": up, "status": str(p, "vigil.target.status")})] = p.value
			case "vigil.target.ejected":
				f[key("vigil_targets_ejected", map[string]string{"upstream": up})] = p.value
			case "vigil.target.ejections":
				f[key("vigil_ejections_total", map[string]string{"upstream": up})] = p.value
			case "vigil.target.remembered":
				f[key("vigil_targets_remembered", map[string]string{"upstream": up})] = p.value
			case "vigil.probe.active":
				f[key("vigil_probes_in_flight", map[string]string{"upstream": up})] = p.value
			case "vigil.probe.dropped":
				f[key("vigil_probes_dropped_total", map[string]string{"upstream": up})] = p.value
			case "vigil.dns.changes":
				f[key("vigil_changes_total", map[string]string{"upstream": up, "result": str(p, "vigil.dns.change.result")})] = p.value
			case "vigil.dns.version":
				f[key("vigil_address_set_version", map[string]string{"upstream": up})] = p.value
			default:
				t.Errorf("%s: no Prometheus metric to compare it with", name)
			}
		}
	}
	return f
}

// histogramSum returns the sum of p's histogram data point.
func histogramSum(m metricdata.Metrics, p point) float64 {
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if dp.Attributes.Equals(&p.attrs) {
			return dp.Sum
		}
	}
	return math.NaN()
}

func key(name string, labels map[string]string) string {
	s := name + "{"
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			s += ","
		}
		s += k + "=" + labels[k]
	}
	return s + "}"
}

// diff returns what differs between the two, by key: sums to within a
// rounding error, everything else exactly. Prometheus's per-target health
// (vigil_target_healthy) has no OpenTelemetry counterpart and is left out;
// so are the empty probe-outcome series Prometheus keeps from the start.
func diff(prom, otel figures) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(prom)) {
		if strings.HasPrefix(k, "vigil_target_healthy{") {
			continue
		}
		o, ok := otel[k]
		p := prom[k]
		switch {
		case !ok && p == 0:
		case !ok:
			out = append(out, fmt.Sprintf("%s: Prometheus %v, OpenTelemetry none", k, p))
		case math.Abs(o-p) > 1e-9*math.Max(1, math.Abs(p)):
			out = append(out, fmt.Sprintf("%s: Prometheus %v, OpenTelemetry %v", k, p, o))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(otel)) {
		if _, ok := prom[k]; !ok {
			out = append(out, fmt.Sprintf("%s: OpenTelemetry %v, Prometheus none", k, otel[k]))
		}
	}
	return out
}

// The Prometheus collector and OpenTelemetry, following one upstream's bus,
// show the same figures once its events are delivered: every count, every
// gauge, every histogram's count and sum.
func TestAgreesWithPrometheus(t *testing.T) {
	w := newWorld(t, "127.0.54.21")
	col := metrics.New(w.up.Bus())
	t.Cleanup(col.Close)
	col.AddChecker(w.up.Checker())
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	m, r := newMetrics(t, w.up.Bus())
	m.AddChecker(w.up.Checker())

	w.run(t)
	w.story(t, func() float64 { return float64(w.up.Checker().Stats().Ejections) })
	r.waitValue(t, "a SERVFAIL resolution", above(0), "vigil.dns.failures", "error.type", "servfail")
	w.stop() // no more events: the two must meet

	var differ []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if differ = diff(promFigures(t, reg), otelFigures(t, r)); len(differ) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus and OpenTelemetry still differ after 10s:\n%s", strings.Join(differ, "\n"))
		}
	}
	p := promFigures(t, reg)
	for _, k := range []string{
		key("vigil_requests_total", map[string]string{"upstream": upstream, "outcome": "5xx"}),
		key("vigil_ejections_total", map[string]string{"upstream": upstream}),
		key("vigil_dns_failures_total", map[string]string{"upstream": upstream, "reason": "servfail"}),
		key("vigil_status_transitions_total", map[string]string{"upstream": upstream, "to": "unhealthy"}),
	} {
		if p[k] == 0 {
			t.Errorf("%s is 0: the story did not happen, nothing was compared", k)
		}
	}
}
