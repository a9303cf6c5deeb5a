package fleet_test

import (
	"fmt"
	"math/rand/v2"
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
		aloneDetect, _ := w.detect(b, 5)

		for _, c := range w.clients {
			c.join(fleet.Config{})
		}
		start := time.Now()
		w.waitSettled(n, fleet.DefaultProbers)
		settle := time.Since(start)
		shared := w.probeRate(10)
		sharedDetect, spread := w.detect(b, 10)

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
		b.ReportMetric(ms(meanD(aloneDetect)), "ms-to-all-unhealthy-alone-mean")
		b.ReportMetric(ms(aloneDetect[len(aloneDetect)-1]), "ms-to-all-unhealthy-alone-max")
		b.ReportMetric(ms(meanD(sharedDetect)), "ms-to-all-unhealthy-shared-mean")
		b.ReportMetric(ms(sharedDetect[len(sharedDetect)-1]), "ms-to-all-unhealthy-shared-max")
		b.ReportMetric(ms(meanD(spread)), "ms-first-to-all-unhealthy-shared-mean")
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
// Each failure comes at a random moment of the probe cycle: right after a
// recovery it would come right after a probe.
// The second result is, for each, the time from the first client holding
// it unhealthy to the last: the time the verdict takes to spread.
func (w *world) detect(b *testing.B, trials int) (all, spread []time.Duration) {
	for i := range trials {
		be, a := w.backends[i%len(w.backends)], w.addrs[i%len(w.addrs)]
		time.Sleep(rand.N(w.interval))
		start := time.Now()
		be.SetPathStatus("/healthz", 500)
		first := w.waitAll(b, a, health.Unhealthy)
		all = append(all, time.Since(start))
		spread = append(spread, time.Since(first))
		be.SetPathStatus("/healthz", 0)
		w.waitAll(b, a, health.Healthy)
	}
	slices.Sort(all)
	slices.Sort(spread)
	return all, spread
}

// waitAll polls every millisecond until every client holds a at s and
// returns when the first one did.
func (w *world) waitAll(b *testing.B, a resolver.Address, s health.Status) (first time.Time) {
	deadline := time.Now().Add(20 * w.interval)
	for {
		n := 0
		for _, c := range w.clients {
			if !c.done && c.chk.Status(a) == s {
				n++
			}
		}
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n == len(w.clients) {
			return first
		}
		if now.After(deadline) {
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

// BenchmarkTraffic measures what the fleet costs NATS at N = 4, 24 and 96
// members, each with its own connection, against 4 backends probed every
// 500ms, in one run on one embedded server each: the messages each member
// receives per second (mean and busiest), those the server handles (in and
// out), and the values written. It measures a scenario, not a loop: run it
// with -benchtime=1x.
func BenchmarkTraffic(b *testing.B) {
	for b.Loop() {
		for i, n := range []int{4, 24, 96} {
			tr := measureTraffic(b, fmt.Sprintf("127.0.153.%d", 1+10*i), n, 4, 500*time.Millisecond, 20)
			b.ReportMetric(tr.perMember, fmt.Sprintf("msgs/member/s-N=%d", n))
			b.ReportMetric(tr.maxMember, fmt.Sprintf("max-msgs/member/s-N=%d", n))
			b.ReportMetric(tr.server, fmt.Sprintf("server-msgs/s-N=%d", n))
			b.ReportMetric(tr.writes, fmt.Sprintf("writes/s-N=%d", n))
		}
	}
}
