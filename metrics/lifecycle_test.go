package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
)

// An Unwatch and a Watch of one upstream at the same time leave it either
// unwatched or watched with live series: never watched through counters
// that the Unwatch deleted, into which probes would vanish.
func TestConcurrentUnwatchAndWatch(t *testing.T) {
	bad := 0
	for i := range 300 {
		bus := events.New()
		col := New(bus)
		reg := prometheus.NewRegistry()
		reg.MustRegister(col)
		col.Watch("api")
		var wg sync.WaitGroup
		wg.Go(func() { col.Unwatch("api") })
		wg.Go(func() { col.Watch("api") })
		wg.Wait()
		if col.t.Watching("api") {
			events.Publish(bus, health.ProbeTopic("api"), probe(i+1000))
			var v float64
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if v, _ = value(t, reg, "vigil_probes_total", "outcome", "success"); v == 1 {
					break
				}
			}
			if v != 1 {
				bad++
			}
		}
		col.Close()
		bus.Close()
	}
	if bad > 0 {
		t.Errorf("%d of 300 runs: upstream watched, probe published, vigil_probes_total stays 0", bad)
	}
}
