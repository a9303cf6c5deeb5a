package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// BenchmarkScrape gathers a collector of one upstream with five targets,
// some probes, queries and requests counted.
func BenchmarkScrape(b *testing.B) {
	bus := events.New()
	defer bus.Close()
	col := New(bus)
	defer col.Close()
	checker, _ := health.NewChecker(health.Config{Name: "api"}, bus)
	var ts []resolver.Address
	for i := byte(1); i <= 5; i++ {
		ts = append(ts, testAddr(i))
	}
	checker.SetTargets(ts)
	col.AddChecker(checker)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	for i := 0; i < 100; i++ {
		events.Publish(bus, health.ProbeTopic("api"), probe(i))
		events.Publish(bus, balancer.ResultTopic("api"), balancer.Result{Name: "api", Address: ts[i%5], Outcome: balancer.HTTPStatus(200 + 100*(i%4))})
		events.Publish(bus, resolver.QueryTopic("api"), resolver.Query{Name: "api", Type: "A", Duration: time.Millisecond})
	}
	for {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if countOf(mfs, "vigil_requests_total") == 100 && countOf(mfs, "vigil_probes_total") == 100 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// countOf sums the counter series of metric name in mfs.
func countOf(mfs []*dto.MetricFamily, name string) float64 {
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
