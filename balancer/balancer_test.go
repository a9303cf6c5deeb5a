package balancer

import (
	"errors"
	"strconv"
	"strings"
	"testing"

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

func TestRoundRobinEvenShares(t *testing.T) {
	const n, picks = 10, 200_000
	c := newChecker(t, addrs(n)...)
	b := New(c)
	got := counts(t, b, picks)
	if len(got) != n {
		t.Fatalf("%d targets picked, want %d", len(got), n)
	}
	// Each count is binomial(picks, 1/n): σ ≈ 134; 5% is 7σ.
	for k, v := range got {
		if v < picks/n*95/100 || v > picks/n*105/100 {
			t.Errorf("%v: %d picks, want %d ±5%%", k, v, picks/n)
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
