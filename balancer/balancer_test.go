package balancer

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

func TestPickOnlyHealthy(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			as := addrs(6)
			c := newChecker(t, as...)
			b := New(c, WithPolicy(p))
			if _, err := b.Pick(); err != nil {
				t.Fatal(err)
			}
			setUnhealthy(t, c, as[1], as[4])
			seen := make(map[resolver.Key]int)
			for i := range 6000 {
				a, err := b.PickKey(strconv.Itoa(i))
				if err != nil {
					t.Fatal(err)
				}
				seen[a.Key()]++
			}
			for _, bad := range []resolver.Address{as[1], as[4]} {
				if n := seen[bad.Key()]; n > 0 {
					t.Errorf("unhealthy %v picked %d times", bad, n)
				}
			}
			for _, good := range []resolver.Address{as[0], as[2], as[3], as[5]} {
				if seen[good.Key()] == 0 {
					t.Errorf("healthy %v never picked", good)
				}
			}
			// Back to healthy: picked again.
			setHealthy(t, c, as[1])
			if counts(t, b, 4000)[as[1].Key()] == 0 {
				t.Errorf("%v never picked after it turned healthy", as[1])
			}
		})
	}
}

// Round robin is an exact rotation in canonical order per shard: any n
// consecutive picks of one shard hold each of n targets once. Picks from
// many goroutines spread over the shards, so each target's count is within
// the number of shards of an even share.
func TestRoundRobinRotation(t *testing.T) {
	const n = 5
	as := addrs(n)
	c := newChecker(t, as...)
	b := New(c)
	if _, err := b.Pick(); err != nil {
		t.Fatal(err)
	}
	for j := range b.shards.n {
		seq := shardPicks(t, b, j, 3*n+1)
		at := slices.IndexFunc(as, func(a resolver.Address) bool { return a.Key() == seq[0].Key() })
		for i, a := range seq {
			if want := as[(at+i)%n]; a.Key() != want.Key() {
				t.Fatalf("shard %d, pick %d: %v, want %v", j, i, a, want)
			}
		}
	}

	b = New(c) // every shard at its start
	var mu sync.Mutex
	got := make(map[resolver.Key]int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			local := make(map[resolver.Key]int)
			for range 250 * n {
				a, _ := b.Pick()
				local[a.Key()]++
			}
			mu.Lock()
			for k, v := range local {
				got[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, a := range as {
		if d := got[a.Key()] - 1000; d <= -b.shards.n || d >= b.shards.n {
			t.Errorf("%v: %d of %d concurrent picks, want 1000 within ±%d (the shards)", a, got[a.Key()], 1000*n, b.shards.n-1)
		}
	}
}

// Random draws are even in expectation, and follow SRV weights.
func TestRandomShares(t *testing.T) {
	const n, picks = 10, 200_000
	as := addrs(n)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(Random))
	got := counts(t, b, picks)
	// Each count is binomial(picks, 1/n): σ ≈ 134; 5% is 7σ.
	for k, v := range got {
		if v < picks/n*95/100 || v > picks/n*105/100 {
			t.Errorf("%v: %d picks, want %d ±5%%", k, v, picks/n)
		}
	}
	if len(got) != n {
		t.Fatalf("%d targets picked, want %d", len(got), n)
	}

	as = addrs(3)
	as[0].Weight, as[1].Weight, as[2].Weight = 1, 3, 6
	c.SetTargets(as)
	got = counts(t, b, 100_000)
	for _, a := range as { // σ of a share ≤ 0.0016: the tolerance is 6σ
		want := float64(a.Weight) / 10
		if f := float64(got[a.Key()]) / 100_000; math.Abs(f-want) > 0.01 {
			t.Errorf("%v (weight %d): share %.3f, want %.2f", a, a.Weight, f, want)
		}
	}
}

func TestErrNoHealthy(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			c := newChecker(t)
			b := New(c, WithPolicy(p))
			check := func(err error) {
				t.Helper()
				if !errors.Is(err, ErrNoHealthy) {
					t.Fatalf("err = %v, want ErrNoHealthy", err)
				}
				if !strings.Contains(err.Error(), `"api"`) {
					t.Errorf("error %q does not name the upstream", err)
				}
			}
			_, err := b.Pick()
			check(err) // no targets at all
			as := addrs(2)
			c.SetTargets(as)
			if _, err := b.Pick(); err != nil {
				t.Fatal(err)
			}
			setUnhealthy(t, c, as...)
			_, err = b.Pick()
			check(err)
			_, err = b.PickKey("k")
			check(err)
			_, err = b.PickCall()
			check(err)
			_, err = b.PickKeyCall("k")
			check(err)
		})
	}
}

func TestPriority(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			as := addrs(4)
			as[2].Priority, as[3].Priority = 1, 1
			c := newChecker(t, as...)
			b := New(c, WithPolicy(p))
			only := func(want ...resolver.Address) {
				t.Helper()
				got := counts(t, b, 2000)
				for _, w := range want {
					if got[w.Key()] == 0 {
						t.Errorf("%v never picked", w)
					}
					delete(got, w.Key())
				}
				for k, v := range got {
					t.Errorf("%v picked %d times; want only %v", k, v, want)
				}
			}
			only(as[0], as[1])
			setUnhealthy(t, c, as[0])
			only(as[1])
			setUnhealthy(t, c, as[1])
			only(as[2], as[3])
			setHealthy(t, c, as[0])
			only(as[0])
			// A priority change alone (same identity) moves the target.
			as[0].Priority = 2
			c.SetTargets(as)
			only(as[2], as[3])
		})
	}
}

// A pick that finds the snapshot stale while another goroutine rebuilds it
// waits for that build when the stale snapshot has no candidate, instead of
// failing with ErrNoHealthy: the first address set arriving while a sweep
// builds must not fail the first request.
func TestPickWaitsForBuildWhenStaleSnapshotIsEmpty(t *testing.T) {
	c := newChecker(t)
	b := New(c)
	if _, err := b.Pick(); !errors.Is(err, ErrNoHealthy) {
		t.Fatalf("pick before any target: %v", err)
	}
	c.SetTargets(addrs(2)) // the generation moves; the snapshot is stale and empty
	b.mu.Lock()            // another goroutine is building
	got := make(chan error, 1)
	go func() {
		_, err := b.Pick()
		got <- err
	}()
	select {
	case err := <-got:
		b.mu.Unlock()
		t.Fatalf("the pick did not wait for the build in progress: %v", err)
	case <-time.After(50 * time.Millisecond): // it waits: let the build finish
	}
	b.mu.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("pick after the build: %v", err)
	}
}

// A pick made while another goroutine rebuilds the snapshot after a status
// change waits for that build: the previous snapshot holds the target that
// just turned unhealthy, and no pick may return it.
func TestPickNeverReturnsATargetJustMadeUnhealthy(t *testing.T) {
	as := addrs(2)
	c := newChecker(t, as...)
	b := New(c)
	if _, err := b.Pick(); err != nil { // a snapshot with both
		t.Fatal(err)
	}
	c.ReportTCPFailure(as[0])
	c.ReportTCPFailure(as[0]) // ejected: unhealthy
	if c.Status(as[0]) != health.Unhealthy {
		t.Fatalf("setup: %v", c.Status(as[0]))
	}
	b.mu.Lock() // another goroutine is building
	got := make(chan resolver.Address, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			a, err := b.Pick()
			if err == nil {
				got <- a
			}
		})
	}
	select {
	case a := <-got:
		b.mu.Unlock()
		wg.Wait()
		t.Fatalf("a pick used the previous snapshot: %v", a)
	case <-time.After(50 * time.Millisecond): // they wait: let the build finish
	}
	b.mu.Unlock()
	wg.Wait()
	close(got)
	for a := range got {
		if a.Key() == as[0].Key() {
			t.Fatalf("a pick returned %v, which the checker holds unhealthy", a)
		}
	}
}
