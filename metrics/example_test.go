package metrics_test

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/metrics"
	"github.com/vigil-go/vigil/resolver"
)

// Register a Collector on a registry of your own and serve it. The checker
// is read at every scrape; probes, DNS queries and requests arrive on the
// bus once the source, the checker and the transport run.
func Example() {
	bus := events.New()
	defer bus.Close()
	checker, err := health.NewChecker(health.Config{Name: "shop.example"}, bus)
	if err != nil {
		panic(err)
	}
	checker.SetTargets([]resolver.Address{
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 80, Hostname: "shop.example"},
		{IP: netip.MustParseAddr("192.0.2.2"), Port: 80, Hostname: "shop.example"},
	})
	b := balancer.New(checker, balancer.WithBus(bus)) // its Calls (PickCall, then Done) are counted
	_ = b

	col := metrics.New(bus)
	defer col.Close()
	col.AddChecker(checker)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	// go http.ListenAndServe("127.0.0.1:9090", mux)

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_targets" {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Println(mf.GetName(), m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
		}
	}
	// Output:
	// vigil_targets healthy 2
	// vigil_targets unhealthy 0
}
