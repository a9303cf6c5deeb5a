package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Targets and statuses change every millisecond while goroutines pick. Every
// pick must come from the healthy set of the snapshot it read, at that
// snapshot's best priority, and every snapshot must be a healthy set the
// checker really had.
func TestChurn(t *testing.T) {
	type variant struct {
		name   string
		p      Policy
		opts   []Option
		spread bool // Envoy's priority load: any level with a healthy target may take a pick
	}
	var vs []variant
	for _, p := range policies {
		vs = append(vs, variant{p.String(), p, nil, false})
	}
	vs = append(vs, variant{"round-robin with slow start", RoundRobin, []Option{WithSlowStart(40 * time.Millisecond)}, false})
	for _, p := range []Policy{RoundRobin, ConsistentHash, PeakEWMA} {
		vs = append(vs, variant{p.String() + " with priority load", p, []Option{WithOverprovisioningFactor(1.4)}, true})
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			pool := addrs(40)
			for i := range pool {
				pool[i].Weight = uint16(i % 4)
				if i%3 == 0 {
					pool[i].Priority = 1
				}
			}
			c := newChecker(t, pool[:20]...)
			b := New(c, append([]Option{WithPolicy(v.p)}, v.opts...)...)
			states := map[string]bool{fmt.Sprint(c.Healthy()): true}

			done := make(chan struct{})
			var wg sync.WaitGroup
			var picks atomic.Int64
			var seen sync.Map // *snapshot → struct{}
			var failure atomic.Pointer[string]
			fail := func(format string, args ...any) {
				msg := fmt.Sprintf(format, args...)
				failure.CompareAndSwap(nil, &msg)
			}
			for g := range 8 {
				wg.Go(func() {
					var last *snapshot
					for i := 0; ; i++ {
						select {
						case <-done:
							return
						default:
						}
						if i%32 == 0 {
							runtime.Gosched() // let the churn keep its millisecond pace on few cores
						}
						if i%2 == 1 { // the public path, for the race detector
							if _, err := b.Pick(); err != nil && !errors.Is(err, ErrNoHealthy) {
								fail("Pick: %v", err)
							}
							continue
						}
						s := b.current()
						if s != last {
							seen.Store(s, struct{}{})
							last = s
						}
						if len(s.levels) == 0 {
							if len(s.healthy) != 0 {
								fail("no candidates but %d healthy", len(s.healthy))
							}
							continue
						}
						var a resolver.Address
						switch v.p {
						case ConsistentHash:
							lv, i := s.keyIndex(b.shards, strconv.Itoa(g*1_000_000+i))
							a = lv.addrs[i]
						case LeastRequest, PeakEWMA:
							lv := s.level(b.shards)
							call := b.call(lv, lv.picker.pick(b.shards))
							a = call.Address
							call.Done(Ignore)
						default:
							lv := s.level(b.shards)
							a = lv.addrs[lv.picker.pick(b.shards)]
						}
						picks.Add(1)
						if _, ok := slices.BinarySearchFunc(s.healthy, a, resolver.Compare); !ok {
							fail("picked %v, not healthy in the snapshot it read", a)
						}
						best := s.healthy[0].Priority
						for _, h := range s.healthy {
							best = min(best, h.Priority)
						}
						if !v.spread && a.Priority != best {
							fail("picked %v of priority %d; the best healthy priority is %d", a, a.Priority, best)
						}
					}
				})
			}

			rng := rand.New(rand.NewPCG(1, uint64(v.p)))
			tick := time.NewTicker(time.Millisecond)
			deadline := time.Now().Add(300 * time.Millisecond)
			steps := 0
			for ; steps < 250 && time.Now().Before(deadline); steps++ {
				<-tick.C
				switch rng.IntN(3) {
				case 0:
					set := slices.Clone(pool)
					rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
					set = set[:5+rng.IntN(len(set)-5)]
					if rng.IntN(4) == 0 { // a weight change alone
						set[0].Weight++
					}
					c.SetTargets(set)
				case 1:
					c.ReportTCPFailure(pool[rng.IntN(len(pool))])
				case 2:
					c.ReportSuccess(pool[rng.IntN(len(pool))])
				}
				states[fmt.Sprint(c.Healthy())] = true
			}
			tick.Stop()
			close(done)
			wg.Wait()

			if msg := failure.Load(); msg != nil {
				t.Fatal(*msg)
			}
			snapshots := 0
			seen.Range(func(k, _ any) bool {
				snapshots++
				if s := k.(*snapshot); !states[fmt.Sprint(s.healthy)] {
					t.Errorf("snapshot of generation %d holds a healthy set the checker never had: %v", s.gen, s.healthy)
				}
				return true
			})
			t.Logf("%d picks over %d snapshots in %d steps", picks.Load(), snapshots, steps)
			if picks.Load() < 1000 || snapshots < 10 {
				t.Fatalf("%d picks over %d snapshots in %d steps: too little to show anything", picks.Load(), snapshots, steps)
			}
		})
	}
}
