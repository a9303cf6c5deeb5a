package health

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/rebuild"
	"github.com/vigil-go/vigil/resolver"
)

// addrs10k returns n+1 distinct addresses (the last is the spare).
func addrsN(n int) []resolver.Address {
	out := make([]resolver.Address, 0, n+1)
	ip := netip.MustParseAddr("127.10.0.1")
	for i := 0; i <= n; i++ {
		out = append(out, resolver.Address{IP: ip, Port: 8080, Hostname: "svc.test"})
		ip = ip.Next()
	}
	return out
}

// BenchmarkReconcile: a 10,000-target set with one address added and one
// removed per operation, reconciled (vigil) vs rebuilt (baseline).
func BenchmarkReconcile(b *testing.B) {
	const n = 10000
	all := addrsN(n)
	setA := all[:n]                                                   // without the spare
	setB := append(append([]resolver.Address{}, all[1:n]...), all[n]) // first removed, spare added
	b.Run("vigil", func(b *testing.B) {
		c, err := NewChecker(Config{Name: "bench"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		alternate(b, c.SetTargets, setA, setB)
	})
	b.Run("rebuild", func(b *testing.B) {
		c := rebuild.New(rebuild.Config{})
		alternate(b, c.SetTargets, setA, setB)
	})
}

// alternate sets a, then switches between b and a once per operation.
// Besides wall time it reports the process's CPU time per operation, which
// other work on a shared machine does not inflate.
func alternate(b *testing.B, set func([]resolver.Address), setA, setB []resolver.Address) {
	set(setA)
	b.ReportAllocs()
	cpu, n := cpuTime(), 0
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			set(setB)
		} else {
			set(setA)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/op")
}

// BenchmarkMemoryPerTarget reports the checker's heap per live target.
func BenchmarkMemoryPerTarget(b *testing.B) {
	const n = 10000
	set := addrsN(n)[:n]
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := NewChecker(Config{Name: "bench"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetTargets(set)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/target")
		runtime.KeepAlive(c)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbe10k probes 10,000 targets (100 loopback backends × 100
// hostnames) every second over keep-alive HTTP, for a bounded window per
// operation. Run it with -benchtime=1x. CPU time includes the in-process
// backends.
func BenchmarkProbe10k(b *testing.B) {
	const (
		nBackends = 100
		perHost   = 100
	)
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.9.1"), nBackends, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	var set []resolver.Address
	for _, be := range bs {
		for h := range perHost {
			set = append(set, be.Address("h"+strconv.Itoa(h)+".test"))
		}
	}
	for _, idle := range []int{0, DefaultMaxIdleConns, 8000} {
		b.Run("idle-"+strconv.Itoa(idle), func(b *testing.B) { probe10k(b, bs, set, idle) })
	}
}

// probe10k runs one Probe10k measurement with at most idle connections kept.
func probe10k(b *testing.B, bs []*backendtest.Backend, set []resolver.Address, idle int) {
	const (
		warmup = 2 * time.Second
		window = 4 * time.Second
	)
	for b.Loop() {
		c, err := NewChecker(Config{Name: "bench", Active: Active{Timeout: 2 * time.Second}}, nil,
			WithMaxProbes(64), WithMaxIdleConns(idle))
		if err != nil {
			b.Fatal(err)
		}
		c.SetTargets(set)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = c.Run(ctx) })
		time.Sleep(warmup)
		conns := func() (n int64) {
			for _, be := range bs {
				n += be.Conns()
			}
			return n
		}
		s0, cpu0, c0, t0 := c.Stats(), cpuTime(), conns(), time.Now()
		time.Sleep(window)
		s1, cpu1, c1, el := c.Stats(), cpuTime(), conns(), time.Since(t0)
		cancel()
		wg.Wait()
		probes := float64(s1.ProbesCompleted - s0.ProbesCompleted)
		b.ReportMetric(probes/el.Seconds(), "probes/s")
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/probes, "cpu-µs/probe")
		b.ReportMetric(float64(c1-c0), "new-conns")
		if u := healthyCount(c); u != len(set) {
			b.Fatalf("%d of %d targets healthy", u, len(set))
		}
	}
}

func healthyCount(c *Checker) int { return len(c.Healthy()) }

// BenchmarkReadsWhileProbing measures Status, Target and Healthy on 1,000
// targets probed every 10ms, and Targets on the same set.
func BenchmarkReadsWhileProbing(b *testing.B) {
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.9.200"), 10, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	var set []resolver.Address
	for _, be := range bs {
		for h := range 100 {
			set = append(set, be.Address("h"+strconv.Itoa(h)+".test"))
		}
	}
	cfg := Config{Name: "bench", Active: Active{
		Healthy:   HealthyRules{Interval: 10 * time.Millisecond},
		Unhealthy: UnhealthyRules{Interval: 10 * time.Millisecond},
	}}
	c, err := NewChecker(cfg, nil, WithMaxProbes(32))
	if err != nil {
		b.Fatal(err)
	}
	c.SetTargets(set)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	a := set[len(set)/2]
	b.Run("Status", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = c.Status(a)
			}
		})
	})
	b.Run("Healthy", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = c.Healthy()
			}
		})
	})
	b.Run("Targets", func(b *testing.B) {
		for b.Loop() {
			_ = c.Targets()
		}
	})
	b.ReportMetric(float64(c.Stats().ProbesCompleted), "probes")
}

// BenchmarkOutlierEvaluation is one outlier detection interval over 1,000
// targets with traffic counted, both algorithms on: the samples, the mean
// and standard deviation, the comparisons (no target is an outlier, so
// nothing is ejected and every operation does the same work).
func BenchmarkOutlierEvaluation(b *testing.B) {
	cfg := passiveOnly("outliers")
	cfg.Passive.Outlier = Outlier{Interval: time.Hour,
		SuccessRate: &SuccessRate{}, FailurePercentage: &FailurePercentage{}}
	c, err := NewChecker(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	as := make([]resolver.Address, 1000)
	for i := range as {
		as[i] = resolver.Address{IP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
	}
	c.SetTargets(as)
	fill := func() {
		for _, t := range c.targets {
			t.state.window = window{ok: 190, failed: 10}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		c.detectOutliers(now)
	}
	if c.stats.Ejections != 0 {
		b.Fatalf("%d ejections: the benchmark must eject nothing", c.stats.Ejections)
	}
}

// BenchmarkReport is one passive report, the per-request cost the
// balancer's Transport pays in the checker.
func BenchmarkReport(b *testing.B) {
	c, err := NewChecker(passiveOnly("report"), nil)
	if err != nil {
		b.Fatal(err)
	}
	a := resolver.Address{IP: mustIP("10.2.0.1"), Port: 80}
	c.SetTargets([]resolver.Address{a})
	b.Run("success", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ReportSuccess(a)
		}
	})
	b.Run("http-200", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ReportHTTPStatus(a, 200)
		}
	})
}

// BenchmarkRestore: a new checker takes up 10,000 targets whose state a
// Memory holds, left there by the previous checker of its name (R9), or,
// for comparison, 10,000 targets it has never seen. The difference is
// what restoring costs.
func BenchmarkRestore(b *testing.B) {
	const n = 10000
	set := addrsN(n)[:n]
	for _, restore := range []bool{false, true} {
		name := "new"
		if restore {
			name = "from-memory"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				var opts []Option
				if restore {
					m := NewMemory(n)
					old, err := NewChecker(Config{Name: "bench"}, nil, WithMemory(m))
					if err != nil {
						b.Fatal(err)
					}
					old.SetTargets(set)
					for _, a := range set[:n/10] {
						old.ReportTCPFailure(a)
						old.ReportTCPFailure(a) // a tenth of them ejected
					}
					old.leave() // what its Run does when it returns
					opts = append(opts, WithMemory(m))
				}
				c, err := NewChecker(Config{Name: "bench"}, nil, opts...)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC() // the set-up's garbage is not the timed work's
				b.StartTimer()
				before := cpuTime()
				c.SetTargets(set)
				cpu += cpuTime() - before
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkRestoreTake: the restoring alone, of BenchmarkRestore: taking
// the state of 10,000 targets, in key order as a Change lists them, out of
// what the previous checker of the name left in a Memory.
func BenchmarkRestoreTake(b *testing.B) {
	const n = 10000
	set := addrsN(n)[:n]
	b.ReportAllocs()
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		m := NewMemory(n)
		rs := make([]remembered, n)
		for i, a := range set {
			rs[i] = remembered{addr: a, state: newState(Healthy, time.Now())}
		}
		m.park("bench", rs, time.Now())
		var st state
		now := time.Now()
		runtime.GC()
		b.StartTimer()
		before := cpuTime()
		m.lock()
		for _, a := range set {
			if r, ok := m.takeLocked("bench", a.Key(), now); ok {
				st = r.state
			}
		}
		m.unlock()
		cpu += cpuTime() - before
		if m.Len() != 0 || st.status() != Healthy {
			b.Fatal("not every state was taken")
		}
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
