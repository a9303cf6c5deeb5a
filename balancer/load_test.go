package balancer

import (
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// A slow target with requests in flight that leaves the candidates for a
// moment (unhealthy, then healthy again) comes back with its requests in
// flight counted: LeastRequest keeps avoiding it. Only the checker's
// dropping the target forgets them.
func TestLoadSurvivesFlap(t *testing.T) {
	as := addrs(3)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(LeastRequest))
	slow := as[0]
	var held []Call
	for len(held) < 10 {
		call := callFor(t, b, slow)
		held = append(held, call)
	}
	setUnhealthy(t, c, slow) // the flap: out of the candidates ...
	for range 8 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		call.Done(Ignore)
	}
	setHealthy(t, c, slow) // ... and back
	picked := 0
	for range 8 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() == slow.Key() {
			picked++
		}
		call.Done(Ignore)
	}
	if picked > 0 {
		t.Errorf("after a flap the target with 10 requests in flight got %d of the next 8 picks, want 0", picked)
	}
	if l := loadOf(b, slow); l.InFlight != 10 {
		t.Errorf("Loads: %d in flight to the target that flapped, want 10", l.InFlight)
	}

	// The checker drops it: its load goes, and it comes back idle.
	c.SetTargets(as[1:])
	if _, err := b.Pick(); err != nil {
		t.Fatal(err)
	}
	if l := loadOf(b, slow); l != (Load{}) {
		t.Errorf("Loads still lists the target the checker dropped: %+v", l)
	}
	for _, h := range held {
		h.Done(Ignore) // ends on the load it holds
	}
	c.SetTargets(as)
	if _, err := b.Pick(); err != nil {
		t.Fatal(err)
	}
	if l := loadOf(b, slow); l.Address.Key() != slow.Key() || l.InFlight != 0 || l.Picks != 0 {
		t.Errorf("the target back in the checker: %+v, want a fresh load", l)
	}
}

// PeakEWMA's estimate of a target survives the target leaving and
// rejoining the candidates: a slow target stays avoided.
func TestEstimateSurvivesFlap(t *testing.T) {
	clk := newFakeClock()
	as := addrs(2)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(PeakEWMA), WithClock(clk))
	for _, x := range []struct {
		a   resolver.Address
		rtt time.Duration
	}{{as[0], 50 * time.Millisecond}, {as[1], time.Millisecond}} {
		call := callFor(t, b, x.a)
		clk.Advance(x.rtt)
		call.Done(Success)
	}
	setUnhealthy(t, c, as[0])
	if _, err := b.Pick(); err != nil {
		t.Fatal(err)
	}
	setHealthy(t, c, as[0])
	// 50ms decayed by the 1ms since: 49.995ms.
	if got := loadOf(b, as[0]).Latency; got < 49*time.Millisecond || got > 50*time.Millisecond {
		t.Errorf("latency estimate after a flap: %v, want 50ms decayed by 1ms", got)
	}
	for range 200 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() == as[0].Key() {
			t.Fatal("picked the slow target after a flap: its estimate was forgotten")
		}
		call.Done(Success)
	}
}

// Loads counts every Call under every policy: picks (less canceled ones)
// and requests in flight; Pick and PickKey count nothing.
func TestLoads(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			as := addrs(2)
			c := newChecker(t, as...)
			b := New(c, WithPolicy(p))
			for range 5 {
				if _, err := b.Pick(); err != nil {
					t.Fatal(err)
				}
			}
			if ls := b.Loads(); len(ls) != 2 || ls[0].Picks+ls[1].Picks != 0 {
				t.Fatalf("after plain picks: %+v, want two targets, nothing counted", ls)
			}
			var open []Call
			for range 6 {
				call, err := b.PickKeyCall("k")
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, call)
			}
			open[0].Done(Success)
			open[1].Cancel()
			var picks, inFlight int64
			for _, l := range b.Loads() {
				picks += l.Picks
				inFlight += l.InFlight
			}
			if picks != 5 || inFlight != 4 {
				t.Errorf("6 Calls, 1 done, 1 canceled: %d picks and %d in flight, want 5 and 4", picks, inFlight)
			}
			for _, call := range open[2:] {
				call.Done(Success)
			}
			ls := b.Loads()
			ls[0].InFlight = 99 // the caller's copy
			for _, l := range b.Loads() {
				if l.InFlight != 0 {
					t.Errorf("%v: %d in flight after every Call ended", l.Address, l.InFlight)
				}
			}
		})
	}
}

// loadOf returns a's entry of b.Loads, or the zero Load.
func loadOf(b *Balancer, a resolver.Address) Load {
	for _, l := range b.Loads() {
		if l.Address.Key() == a.Key() {
			return l
		}
	}
	return Load{}
}
