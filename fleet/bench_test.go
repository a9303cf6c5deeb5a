package fleet_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// BenchmarkFleet measures 50 clients (each a checker with its own bus and
// fleet member) on one embedded server against 10 loopback backends,
// probing every 500ms: the probes each backend receives per interval
// without the fleet and with it (r = 2), the time from a backend failing
// to every client holding it unhealthy (one failure makes a target
// unhealthy), without and with the fleet, and the times to fall back when
// the server stops and to share again when it is back. It measures a
// scenario, not a loop: run it with -benchtime=1x.
func BenchmarkFleet(b *testing.B) {
	const n, backends = 50, 10
	interval := 500 * time.Millisecond
	for b.Loop() {
		w := newWorld(b, "127.0.147.1", backends, interval)
		for i := range n {
			w.addClient(fmt.Sprintf("client-%02d", i))
		}
		time.Sleep(2 * interval) // every checker has probed every backend
		alone := mean(w.probeRate(6))
		aloneDetect := w.detect(b, 3)

		for _, c := range w.clients {
			c.join(fleet.Config{})
		}
		start := time.Now()
		w.waitSettled(n, fleet.DefaultProbers)
		settle := time.Since(start)
		shared := w.probeRate(10)
		sharedDetect := w.detect(b, 5)

		start = time.Now()
		w.nats.Stop()
		for len(w.sharing()) > 0 {
			time.Sleep(time.Millisecond)
		}
		fallback := time.Since(start)
		if err := w.nats.Restart(); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		w.waitSettled(n, fleet.DefaultProbers)
		resume := time.Since(start)

		b.ReportMetric(alone, "probes/backend/interval-alone")
		b.ReportMetric(mean(shared), "probes/backend/interval-shared")
		b.ReportMetric(slices.Max(shared), "max-probes/backend/interval-shared")
		b.ReportMetric(ms(aloneDetect[len(aloneDetect)-1]), "ms-to-all-unhealthy-alone-max")
		b.ReportMetric(ms(meanD(sharedDetect)), "ms-to-all-unhealthy-shared-mean")
		b.ReportMetric(ms(sharedDetect[len(sharedDetect)-1]), "ms-to-all-unhealthy-shared-max")
		b.ReportMetric(ms(settle), "ms-to-settle")
		b.ReportMetric(ms(fallback), "ms-to-fall-back")
		b.ReportMetric(ms(resume), "ms-to-resume")
		for _, c := range w.clients {
			c.stop()
		}
	}
}

// detect fails trials backends in turn and returns, sorted, how long each
// took to be unhealthy at every client; each recovers before the next.
func (w *world) detect(b *testing.B, trials int) []time.Duration {
	var out []time.Duration
	for i := range trials {
		be, a := w.backends[i%len(w.backends)], w.addrs[i%len(w.addrs)]
		start := time.Now()
		be.SetPathStatus("/healthz", 500)
		w.waitAll(b, a, health.Unhealthy)
		out = append(out, time.Since(start))
		be.SetPathStatus("/healthz", 0)
		w.waitAll(b, a, health.Healthy)
	}
	slices.Sort(out)
	return out
}

// waitAll polls every millisecond until every client holds a at s.
func (w *world) waitAll(b *testing.B, a resolver.Address, s health.Status) {
	deadline := time.Now().Add(20 * w.interval)
	for !w.everyone(a, s) {
		if time.Now().After(deadline) {
			b.Fatalf("not every client holds %v %v after %v", a, s, 20*w.interval)
		}
		time.Sleep(time.Millisecond)
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func meanD(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
