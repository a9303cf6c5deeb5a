package health

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// High-frequency churn through the bus while probing runs: a stable node's
// probes keep their rhythm (no extra probe, no gap beyond its interval plus
// jitter and scheduling slack), no known status is reset, the final target
// set is exact. Run must return and leave no goroutine (TestMain checks).
func TestChurn(t *testing.T) {
	const (
		iv       = 25 * time.Millisecond
		changes  = 3000
		maxTime  = 2 * time.Second
		slack    = 150 * time.Millisecond // scheduling delay tolerated under -race on a busy machine
		poolSize = 10
	)
	bs := backends(t, "127.0.4.1", 2+poolSize, nil)
	stable, bad := bs[0].Address("stable.test"), bs[1].Address("bad.test")
	bs[1].SetStatus(500)
	pool := make([]resolver.Address, poolSize)
	badPool := map[resolver.Key]bool{}
	for i := range pool {
		pool[i] = bs[2+i].Address("pool.test")
		if i%2 == 0 {
			bs[2+i].SetStatus(500)
			badPool[pool[i].Key()] = true
		}
	}
	bus := newBus(t)
	log := recordEvents(t, bus, "up4")
	probes := newProbeLog()
	cfg := fast("up4", iv)
	cfg.Active.Unhealthy.HTTPFailures = 1
	c := newChecker(t, cfg, bus, probes.hook)
	start(t, c)

	publish(t, bus, c, 1, append([]resolver.Address{stable, bad}, pool...)...)
	testutil.Eventually(t, 3*time.Second, "bad targets to turn unhealthy", func() bool {
		if c.Status(bad) != Unhealthy {
			return false
		}
		for _, p := range pool {
			if badPool[p.Key()] && c.Status(p) != Unhealthy {
				return false
			}
		}
		return true
	})

	rng := rand.New(rand.NewPCG(1, 2))
	began := time.Now()
	var last []resolver.Address
	v := uint64(1)
	for i := 0; i < changes && time.Since(began) < maxTime; i++ {
		set := []resolver.Address{stable, bad}
		for _, p := range pool {
			if rng.IntN(2) == 0 {
				set = append(set, p)
			}
		}
		v++
		last = sorted(set)
		events.Publish(bus, resolver.Topic("up4"), resolver.Change{Name: "up4", Version: v, Addresses: last})
		if i%3 == 0 {
			time.Sleep(time.Millisecond)
		}
		if c.Status(bad) != Unhealthy {
			t.Fatalf("change %d: bad is %v", i, c.Status(bad))
		}
	}
	testutil.Eventually(t, 3*time.Second, "the last change to be applied", func() bool { return c.Stats().Version == v })
	churnEnd := time.Now()
	if got := addrsOf(c.Targets()); !slices.Equal(got, last) {
		t.Fatalf("final targets %v, want %v", got, last)
	}
	s := c.Stats()
	t.Logf("%d changes in %v: applied %d, ignored %d, probes %d", v-1, churnEnd.Sub(began), s.ChangesApplied, s.ChangesIgnored, s.ProbesStarted)

	for _, e := range log.all() {
		if e.To == Healthy && (e.Address.Key() == bad.Key() || badPool[e.Address.Key()]) {
			t.Fatalf("a known unhealthy target was reset: %+v", e)
		}
	}
	if c.Status(bad) != Unhealthy {
		t.Fatal("bad was reset")
	}

	starts := probes.of(stable)
	var inChurn []time.Time
	for _, s := range starts {
		if !s.Before(began) && !s.After(churnEnd) {
			inChurn = append(inChurn, s)
		}
	}
	if len(inChurn) < int(churnEnd.Sub(began)/iv)/2 {
		t.Fatalf("stable probed %d times in %v", len(inChurn), churnEnd.Sub(began))
	}
	minGap, maxGap := time.Hour, time.Duration(0)
	for i := 1; i < len(starts); i++ {
		if starts[i].Before(began) || starts[i-1].After(churnEnd) {
			continue
		}
		g := starts[i].Sub(starts[i-1])
		minGap, maxGap = min(minGap, g), max(maxGap, g)
	}
	t.Logf("stable: %d probes during churn, gaps %v..%v", len(inChurn), minGap, maxGap)
	if minGap < iv*95/100-time.Millisecond {
		t.Fatalf("stable got an extra probe: gap %v < interval %v - jitter", minGap, iv)
	}
	if maxGap > iv*105/100+slack {
		t.Fatalf("stable's probes had a gap of %v (interval %v)", maxGap, iv)
	}
}
