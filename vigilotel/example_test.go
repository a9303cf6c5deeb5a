package vigilotel_test

import (
	"context"
	"fmt"
	"net/netip"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/vigilotel"
)

// Report an upstream's metrics to a MeterProvider of your own: here the
// SDK's, with a ManualReader; in production a PeriodicReader and an OTLP
// exporter. With a vigil.Upstream, pass u.Bus() and u.Checker().
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

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()

	m, err := vigilotel.New(bus, provider)
	if err != nil {
		panic(err)
	}
	defer func() { _ = m.Close() }()
	m.AddChecker(checker) // follows the upstream on the bus and reads the checker

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "vigil.target.count" {
				continue
			}
			for _, p := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				status, _ := p.Attributes.Value(vigilotel.TargetStatusKey)
				fmt.Println(mt.Name, mt.Unit, status.AsString(), p.Value)
			}
		}
	}
	// Unordered output:
	// vigil.target.count {target} healthy 2
	// vigil.target.count {target} unhealthy 0
}
