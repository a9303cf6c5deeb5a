package balancer

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

func benchBalancer(b *testing.B, n int, p Policy) *Balancer {
	as := addrs(0)
	for i := range n {
		a := addr(0)
		a.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a.Weight = uint16(1 + i%3)
		as = append(as, a)
	}
	lb := New(newChecker(b, as...), WithPolicy(p))
	if _, err := lb.Pick(); err != nil {
		b.Fatal(err)
	}
	return lb
}

var sink resolver.Address

// BenchmarkPick picks from 10 healthy targets: serially, and from every P;
// "bare-rotation" is what a pick costs at least when every pick advances
// one shared counter (an atomic add and a modulo), in the same run.
func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		b.Run(p.String(), func(b *testing.B) {
			lb := benchBalancer(b, 10, p)
			b.ReportAllocs()
			b.ResetTimer()
			var a resolver.Address
			for range b.N {
				a, _ = lb.Pick()
			}
			sink = a
		})
		b.Run(p.String()+"/parallel", func(b *testing.B) {
			lb := benchBalancer(b, 10, p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var a resolver.Address
				for pb.Next() {
					a, _ = lb.Pick()
				}
				_ = a
			})
		})
	}
	as := addrs(10)
	var shared atomic.Uint64
	b.Run("bare-rotation", func(b *testing.B) {
		b.ReportAllocs()
		var a resolver.Address
		for range b.N {
			a = as[shared.Add(1)%uint64(len(as))]
		}
		sink = a
	})
	b.Run("bare-rotation/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var a resolver.Address
			for pb.Next() {
				a = as[shared.Add(1)%uint64(len(as))]
			}
			_ = a
		})
	})
	b.Run("consistent-hash/PickKey", func(b *testing.B) {
		lb := benchBalancer(b, 10, ConsistentHash)
		b.ReportAllocs()
		for b.Loop() {
			a, _ := lb.PickKey("user-123456")
			sink = a
		}
	})
}

// BenchmarkPickPaired times, in every iteration, the same number of picks
// made by one goroutine and spread over GOMAXPROCS goroutines, with round
// robin and with a bare atomic-add rotation over one shared counter (what a
// pick costs at least when every pick advances one counter), one after the
// other, so that the machine's load hits all four alike. Its metrics are
// wall time per pick, and the ratio of parallel to serial for each.
func BenchmarkPickPaired(b *testing.B) {
	const chunk = 200_000
	lb := benchBalancer(b, 10, RoundRobin)
	as := addrs(10)
	var shared atomic.Uint64
	rr := func(n int) {
		var a resolver.Address
		for range n {
			a, _ = lb.Pick()
		}
		_ = a
	}
	bare := func(n int) {
		var a resolver.Address
		for range n {
			a = as[shared.Add(1)%uint64(len(as))]
		}
		_ = a
	}
	procs := runtime.GOMAXPROCS(0)
	timed := func(loop func(int), goroutines int) time.Duration {
		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		ready.Add(goroutines)
		for range goroutines {
			wg.Go(func() {
				ready.Done()
				<-start
				loop(chunk / goroutines)
			})
		}
		ready.Wait()
		began := time.Now()
		close(start)
		wg.Wait()
		return time.Since(began)
	}
	var rrSerial, rrParallel, bareSerial, bareParallel time.Duration
	picks := 0
	for b.Loop() {
		rrSerial += timed(rr, 1)
		rrParallel += timed(rr, procs)
		bareSerial += timed(bare, 1)
		bareParallel += timed(bare, procs)
		picks += chunk
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(picks) }
	b.ReportMetric(per(rrSerial), "rr-serial-ns/pick")
	b.ReportMetric(per(rrParallel), "rr-parallel-ns/pick")
	b.ReportMetric(per(bareSerial), "bare-serial-ns/pick")
	b.ReportMetric(per(bareParallel), "bare-parallel-ns/pick")
	b.ReportMetric(float64(rrParallel)/float64(rrSerial), "rr-parallel/serial")
	b.ReportMetric(float64(bareParallel)/float64(bareSerial), "bare-parallel/serial")
}

// nopReporter takes Calls' reports and does nothing.
type nopReporter struct{}

func (nopReporter) ReportSuccess(resolver.Address)                        {}
func (nopReporter) ReportHTTPStatus(resolver.Address, int)                {}
func (nopReporter) ReportTCPFailure(resolver.Address)                     {}
func (nopReporter) ReportTimeout(resolver.Address)                        {}
func (nopReporter) ReportRetryAfter(resolver.Address, int, time.Duration) {}
func (nopReporter) ReportFailure(resolver.Address, string)                {}

// BenchmarkCall measures the per-request bookkeeping of PickCall and Done:
// "own" is the balancer's part for a response (requests in flight, and
// PeakEWMA's two clock readings and estimate update), with the checker's
// report replaced by nothing; "reported" adds the checker's passive report
// (ReportHTTPStatus), as a Transport's request does.
func BenchmarkCall(b *testing.B) {
	// What PeakEWMA cannot do without: the clock at PickCall and at Done.
	b.Run("two-clock-readings", func(b *testing.B) {
		lb := benchBalancer(b, 10, PeakEWMA)
		var t int64
		for b.Loop() {
			start := lb.now()
			t += lb.now() - start
		}
		_ = t
	})
	for _, p := range []Policy{RoundRobin, LeastRequest, PeakEWMA} {
		for _, reported := range []bool{false, true} {
			name := p.String() + "/own"
			if reported {
				name = p.String() + "/reported"
			}
			setup := func(b *testing.B) *Balancer {
				lb := benchBalancer(b, 10, p)
				if !reported {
					lb.reports = nopReporter{}
				}
				b.ReportAllocs()
				return lb
			}
			b.Run(name, func(b *testing.B) {
				lb := setup(b)
				for b.Loop() {
					c, _ := lb.PickCall()
					c.Done(HTTPStatus(200))
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				lb := setup(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c, _ := lb.PickCall()
						c.Done(HTTPStatus(200))
					}
				})
			})
		}
	}
}

// BenchmarkIndexSource compares ways to choose where a pick writes, in
// parallel: one shared counter; the per-thread generator of math/rand/v2
// (no write); a counter of a padded array at a random index (a write
// that is rarely contended but lands on a line the other core wrote half
// of the time); and the shard a sync.Pool keeps per P (what RoundRobin
// does: Get and Put, then an atomic add on a line that stays on its core).
func BenchmarkIndexSource(b *testing.B) {
	var counter atomic.Uint64
	b.Run("shared-counter", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var s uint64
			for pb.Next() {
				s += counter.Add(1) % 10
			}
			_ = s
		})
	})
	b.Run("rand", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var s int
			for pb.Next() {
				s += randN(10)
			}
			_ = s
		})
	})
	b.Run("rand-indexed-counters", func(b *testing.B) {
		r := newRotor(16)
		b.RunParallel(func(pb *testing.PB) {
			var s uint64
			for pb.Next() {
				s += r.next(randN(16)) % 10
			}
			_ = s
		})
	})
	b.Run("pool-sharded-counters", func(b *testing.B) {
		sh := newShards()
		r := newRotor(sh.n)
		b.RunParallel(func(pb *testing.PB) {
			var s uint64
			for pb.Next() {
				s += r.next(sh.id()) % 10
			}
			_ = s
		})
	})
}

// BenchmarkRebuild10k changes one target's status among 10,000 and picks: the
// pick rebuilds the snapshot. "status-change-only" and
// "status-change+Healthy" are the checker's shares (the report, then the
// healthy list it recomputes), to subtract.
func BenchmarkRebuild10k(b *testing.B) {
	b.Run("status-change-only", func(b *testing.B) {
		lb := benchBalancer(b, 10_000, RoundRobin)
		c, victim := lb.c, lb.snap.Load().levels[0].addrs[5000]
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			flip(c, victim, i)
		}
	})
	b.Run("status-change+Healthy", func(b *testing.B) {
		lb := benchBalancer(b, 10_000, RoundRobin)
		c, victim := lb.c, lb.snap.Load().levels[0].addrs[5000]
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			flip(c, victim, i)
			_ = c.Healthy()
		}
	})
	for _, p := range policies {
		b.Run(p.String(), func(b *testing.B) {
			lb := benchBalancer(b, 10_000, p)
			c, victim := lb.c, lb.snap.Load().levels[0].addrs[5000]
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				flip(c, victim, i)
				a, _ := lb.Pick()
				sink = a
			}
		})
	}
}

func flip(c interface {
	ReportTCPFailure(resolver.Address)
	ReportSuccess(resolver.Address)
}, a resolver.Address, i int) {
	if i%2 == 0 {
		c.ReportTCPFailure(a)
	} else {
		c.ReportSuccess(a)
	}
}
