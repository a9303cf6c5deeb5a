package balancer

import (
	"math"
	"testing"
	"time"
)

func TestSlowStart(t *testing.T) {
	const window = 10 * time.Second
	for _, p := range []Policy{RoundRobin, Random, LeastRequest, PeakEWMA} {
		t.Run(p.String(), func(t *testing.T) {
			clk := newFakeClock()
			as := addrs(3)
			c := newChecker(t, as[0], as[1])
			b := New(c, WithPolicy(p), WithSlowStart(window), WithClock(clk))
			const picks = 30_000 // σ of a share ≤ 0.003: the tolerance is 5σ
			share := func() float64 {
				t.Helper()
				return float64(counts(t, b, picks)[as[2].Key()]) / picks
			}
			// Targets present at the first pick are established.
			if got := counts(t, b, 3000); got[as[0].Key()] == 0 || got[as[1].Key()] == 0 {
				t.Fatalf("established targets not picked: %v", got)
			}
			c.SetTargets(as) // as[2] arrives now
			// A full share is 1/3; a ramping one is f/(2+f) with f the
			// ramp factor max(0.1, elapsed/window).
			steps := []struct {
				elapsed time.Duration
				want    float64
			}{
				{0, 0.1 / 2.1},
				{window / 4, 0.25 / 2.25},
				{window / 2, 0.5 / 2.5},
				{window * 3 / 4, 0.75 / 2.75},
				{window, 1.0 / 3},
				{2 * window, 1.0 / 3},
			}
			start := clk.Now()
			for _, st := range steps {
				clk.ns.Store(start.Add(st.elapsed).UnixNano())
				if got := share(); math.Abs(got-st.want) > 0.015 {
					t.Errorf("after %v: share %.3f, want %.3f", st.elapsed, got, st.want)
				}
			}
			// Turning healthy again starts a new ramp.
			setUnhealthy(t, c, as[2])
			if got := share(); got != 0 {
				t.Fatalf("unhealthy target has share %.3f", got)
			}
			setHealthy(t, c, as[2])
			if got := share(); math.Abs(got-0.1/2.1) > 0.015 {
				t.Errorf("just healthy again: share %.3f, want %.3f", got, 0.1/2.1)
			}
			clk.Advance(window)
			if got := share(); math.Abs(got-1.0/3) > 0.015 {
				t.Errorf("after the window: share %.3f, want %.3f", got, 1.0/3)
			}
			if s := b.snap.Load(); s.levels[0].picker != s.levels[0].base || s.refreshAt != 0 {
				t.Error("ramp finished but the snapshot still checks the clock")
			}
		})
	}
}

func TestSlowStartOff(t *testing.T) {
	clk := newFakeClock()
	as := addrs(2)
	c := newChecker(t, as[0])
	b := New(c, WithClock(clk))
	if _, err := b.Pick(); err != nil {
		t.Fatal(err)
	}
	c.SetTargets(as)
	got := counts(t, b, 40_000)
	if f := float64(got[as[1].Key()]) / 40_000; math.Abs(f-0.5) > 0.02 {
		t.Errorf("without slow start a new target has share %.3f, want 0.5", f)
	}
}
