package balancer

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// passiveConfig is a passive-only checker whose statuses tests set by reports:
// one TCP failure (or HTTP failure) turns a target unhealthy, one success
// turns it healthy.
func passiveConfig(name string) health.Config {
	return health.Config{
		Name: name,
		Active: health.Active{
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
		Passive: health.Passive{
			Healthy:   health.HealthyRules{Successes: 1},
			Unhealthy: health.UnhealthyRules{TCPFailures: 1, HTTPFailures: 1, Timeouts: 1},
		},
	}
}

func newChecker(t testing.TB, addrs ...resolver.Address) *health.Checker {
	t.Helper()
	return newNamedChecker(t, "api", addrs...)
}

// newNamedChecker is newChecker for the upstream name, which is the host a
// Transport takes requests for.
func newNamedChecker(t testing.TB, name string, addrs ...resolver.Address) *health.Checker {
	t.Helper()
	c, err := health.NewChecker(passiveConfig(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets(addrs)
	return c
}

// addr returns a documentation address (no traffic is ever sent to it).
func addr(i int) resolver.Address {
	return resolver.Address{
		IP:       netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
		Port:     8080,
		Hostname: "api.example",
	}
}

func addrs(n int) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range out {
		out[i] = addr(i + 1)
	}
	return out
}

func setUnhealthy(t testing.TB, c *health.Checker, as ...resolver.Address) {
	t.Helper()
	for _, a := range as {
		c.ReportTCPFailure(a)
		if s := c.Status(a); s != health.Unhealthy {
			t.Fatalf("%v is %v after a TCP failure", a, s)
		}
	}
}

func setHealthy(t testing.TB, c *health.Checker, as ...resolver.Address) {
	t.Helper()
	for _, a := range as {
		c.ReportSuccess(a)
		if s := c.Status(a); s != health.Healthy {
			t.Fatalf("%v is %v after a success", a, s)
		}
	}
}

// counts picks n times and counts the addresses (by identity).
func counts(t testing.TB, b *Balancer, n int) map[resolver.Key]int {
	t.Helper()
	m := make(map[resolver.Key]int)
	for range n {
		a, err := b.Pick()
		if err != nil {
			t.Fatal(err)
		}
		m[a.Key()]++
	}
	return m
}

// fakeClock is a Clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	f := &fakeClock{}
	f.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return f
}

func (f *fakeClock) Now() time.Time          { return time.Unix(0, f.ns.Load()) }
func (f *fakeClock) Advance(d time.Duration) { f.ns.Add(int64(d)) }

var policies = []Policy{RoundRobin, LeastRequest, ConsistentHash, Random, PeakEWMA}

// shardCounts picks n times as a goroutine holding shard j does and counts
// the addresses (by identity): round robin is exact per shard.
func shardCounts(t testing.TB, b *Balancer, j, n int) map[resolver.Key]int {
	t.Helper()
	m := make(map[resolver.Key]int)
	for _, a := range shardPicks(t, b, j, n) {
		m[a.Key()]++
	}
	return m
}

// shardPicks picks n times as a goroutine holding shard j does.
func shardPicks(t testing.TB, b *Balancer, j, n int) []resolver.Address {
	t.Helper()
	sh := fixedShard(j, b.shards.n)
	out := make([]resolver.Address, n)
	for i := range out {
		s := b.current()
		if s.err != nil {
			t.Fatal(s.err)
		}
		lv := s.level(sh)
		out[i] = lv.addrs[lv.picker.pick(sh)]
	}
	return out
}

// fixedShard returns shards that always answer shard i of n.
func fixedShard(i, n int) *shards {
	s := &shards{n: n, ids: []int32{int32(i)}}
	s.pool.New = func() any { return &s.ids[0] }
	return s
}
