package vigilotel

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
)

// reader is a ManualReader with its MeterProvider.
type reader struct {
	*sdkmetric.ManualReader
	mp *sdkmetric.MeterProvider
}

func newReader(t *testing.T) *reader {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &reader{r, mp}
}

// newMetrics returns Metrics on bus reporting to a new reader, closed at
// the end of the test.
func newMetrics(t *testing.T, bus *events.Bus, opts ...Option) (*Metrics, *reader) {
	t.Helper()
	r := newReader(t)
	m, err := New(bus, r.mp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, r
}

// collect returns the metrics of ScopeName, by name.
func (r *reader) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// point is one data point of any kind: its attributes and its value (a
// histogram's count).
type point struct {
	attrs attribute.Set
	value float64
}

// points returns the data points of m.
func points(m metricdata.Metrics) []point {
	var ps []point
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			ps = append(ps, point{p.Attributes, float64(p.Value)})
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			ps = append(ps, point{p.Attributes, float64(p.Value)})
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			ps = append(ps, point{p.Attributes, float64(p.Count)})
		}
	}
	return ps
}

// value returns the sum over the data points of metric name whose
// attributes include the given key/value pairs (values compared as
// strings), and whether there is any.
func value(ms map[string]metricdata.Metrics, name string, kv ...string) (float64, bool) {
	var sum float64
	var found bool
	for _, p := range points(ms[name]) {
		if has(p.attrs, kv) {
			sum += p.value
			found = true
		}
	}
	return sum, found
}

func has(s attribute.Set, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		v, ok := s.Value(attribute.Key(kv[i]))
		if !ok || v.String() != kv[i+1] {
			return false
		}
	}
	return true
}

// keys returns the attribute keys of s, sorted and joined by commas.
func keys(s attribute.Set) string {
	var ks []string
	for _, kv := range s.ToSlice() {
		ks = append(ks, string(kv.Key))
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// waitValue collects until metric name, selected by kv, satisfies cond.
func (r *reader) waitValue(t *testing.T, what string, cond func(float64) bool, name string, kv ...string) float64 {
	t.Helper()
	var v float64
	testutil.Eventually(t, 10*time.Second, what, func() bool {
		v, _ = value(r.collect(t), name, kv...)
		return cond(v)
	})
	return v
}

func above(n float64) func(float64) bool  { return func(v float64) bool { return v > n } }
func equals(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

func newBus(t *testing.T) *events.Bus {
	t.Helper()
	b := events.New()
	t.Cleanup(b.Close)
	return b
}
