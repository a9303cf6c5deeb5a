package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-go/vigil/internal/testutil"
)

// value gathers g and returns the sum over the series of metric name whose
// labels include the given name/value pairs (a histogram counts its
// samples), and whether there is any such series.
func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			found = true
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum, found
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// waitValue waits until the metric selected by name and labels satisfies
// cond and returns its value.
func waitValue(t *testing.T, g prometheus.Gatherer, what string, cond func(float64) bool, name string, labels ...string) float64 {
	t.Helper()
	var v float64
	testutil.Eventually(t, 10*time.Second, what, func() bool {
		v, _ = value(t, g, name, labels...)
		return cond(v)
	})
	return v
}

func above(n float64) func(float64) bool  { return func(v float64) bool { return v > n } }
func equals(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
