package balancer

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/vigil-go/vigil/resolver"
)

func TestConsistentHashStability(t *testing.T) {
	const keys = 20_000
	as := addrs(10)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(ConsistentHash))
	mapAll := func() []resolver.Key {
		out := make([]resolver.Key, keys)
		for i := range out {
			a, err := b.PickKey("user-" + strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = a.Key()
		}
		return out
	}
	before := mapAll()
	per := make(map[resolver.Key]int)
	for _, k := range before {
		per[k]++
	}
	for _, a := range as { // 100 points per target: every share within 2x of even
		if n := per[a.Key()]; n < keys/10/2 || n > keys/10*2 {
			t.Errorf("%v holds %d keys, want about %d", a, n, keys/10)
		}
	}
	if again := mapAll(); !equalKeys(before, again) {
		t.Fatal("the same keys map differently without a change")
	}

	leave := func(name string, apply, undo func()) {
		t.Run(name, func(t *testing.T) {
			gone := as[3].Key()
			apply()
			after := mapAll()
			moved := 0
			for i := range before {
				switch {
				case after[i] == gone:
					t.Fatalf("key %d still maps to the departed target", i)
				case before[i] != gone && after[i] != before[i]:
					t.Fatalf("key %d moved from remaining target %v to %v", i, before[i], after[i])
				case before[i] == gone:
					moved++
				}
			}
			if moved != per[gone] {
				t.Fatalf("%d keys moved, want the %d of the departed target", moved, per[gone])
			}
			undo()
			if back := mapAll(); !equalKeys(before, back) {
				t.Fatal("keys do not map back when the target returns")
			}
		})
	}
	leave("removed", func() {
		rest := append(append(addrs(0), as[:3]...), as[4:]...)
		c.SetTargets(rest)
	}, func() { c.SetTargets(as) })
	leave("unhealthy", func() { setUnhealthy(t, c, as[3]) }, func() { setHealthy(t, c, as[3]) })
}

func equalKeys(a, b []resolver.Key) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// The ring derived from the previous one equals the ring built from scratch,
// whatever came and went.
func TestUpdateRingMatchesBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := addrs(60)
	pool[7].Hostname, pool[8].Hostname = "a.example", "b.example"
	pool[8].IP = pool[7].IP // two names on one IP:port are two targets
	var prevAddrs []resolver.Address
	var prev []ringPoint
	for step := range 40 {
		var cur []resolver.Address
		for _, a := range pool {
			if rng.IntN(3) > 0 {
				a.Weight = uint16(rng.IntN(3)) // attributes do not move points
				cur = append(cur, a)
			}
		}
		resolver.Sort(cur)
		if !identitySorted(cur) {
			t.Fatal("canonical order is not identity order: the derivation would never run")
		}
		want := buildRing(cur)
		got := updateRing(prevAddrs, prev, cur)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: derived ring differs from a fresh one", step)
		}
		prevAddrs, prev = cur, got
	}
}
