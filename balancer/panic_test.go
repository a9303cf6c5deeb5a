package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/vigil-go/vigil/resolver"
)

// A single level below the threshold spreads the picks over all its
// targets; at or above it, over the healthy ones.
func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		total     int
		healthy   int
		panicking bool
	}{
		{"below", 0.5, 10, 4, true},
		{"at", 0.5, 10, 5, false},
		{"above", 0.5, 10, 6, false},
		{"at, inexact in binary", 0.3, 10, 3, false},
		{"below, inexact in binary", 0.3, 10, 2, true},
		{"none healthy", 0.5, 10, 0, true},
		{"off", 0, 10, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := addrs(tt.total)
			c := newChecker(t, as...)
			b := New(c, WithPanicThreshold(tt.threshold))
			setUnhealthy(t, c, as[tt.healthy:]...)
			got := counts(t, b, 5000)
			if tt.panicking {
				// Every target, healthy or not, takes picks.
				for _, a := range as {
					if got[a.Key()] == 0 {
						t.Errorf("in panic, %v never picked", a)
					}
				}
				return
			}
			for _, a := range as[tt.healthy:] {
				if n := got[a.Key()]; n > 0 {
					t.Errorf("not in panic, unhealthy %v picked %d times", a, n)
				}
			}
			for _, a := range as[:tt.healthy] {
				if got[a.Key()] == 0 {
					t.Errorf("healthy %v never picked", a)
				}
			}
		})
	}
}

// envoyRow is one row of a table in Envoy's documentation: healthy targets
// per level (out of the level's size), then the traffic to each level and
// whether it is in panic.
type envoyRow struct {
	healthy []int
	traffic []int
	panic   []bool // nil: none
}

func (r envoyRow) String() string { return fmt.Sprint(r.healthy) }

// Envoy's documented examples, level sizes 100 (so that healthy counts are
// percents): arch_overview/upstream/load_balancing/priority (overprovisioning
// factor 1.4, no panic threshold) ...
var envoyPriorityRows = []envoyRow{
	{healthy: []int{100, 100}, traffic: []int{100, 0}},
	{healthy: []int{72, 100}, traffic: []int{100, 0}},
	{healthy: []int{71, 100}, traffic: []int{99, 1}},
	{healthy: []int{50, 100}, traffic: []int{70, 30}},
	{healthy: []int{25, 100}, traffic: []int{35, 65}},
	{healthy: []int{0, 100}, traffic: []int{0, 100}},
	{healthy: []int{72, 72}, traffic: []int{100, 0}},
	{healthy: []int{71, 71}, traffic: []int{99, 1}},
	{healthy: []int{50, 50}, traffic: []int{70, 30}},
	{healthy: []int{25, 25}, traffic: []int{50, 50}},
	{healthy: []int{100, 100, 100}, traffic: []int{100, 0, 0}},
	{healthy: []int{72, 72, 100}, traffic: []int{100, 0, 0}},
	{healthy: []int{71, 71, 100}, traffic: []int{99, 1, 0}},
	{healthy: []int{50, 50, 100}, traffic: []int{70, 30, 0}},
	{healthy: []int{25, 100, 100}, traffic: []int{35, 65, 0}},
	{healthy: []int{25, 25, 100}, traffic: []int{35, 35, 30}},
	{healthy: []int{25, 25, 20}, traffic: []int{36, 36, 28}},
}

// ... and arch_overview/upstream/load_balancing/panic_threshold (panic
// threshold 50%).
var envoyPanicRows = []envoyRow{
	{healthy: []int{72, 100}, traffic: []int{100, 0}, panic: []bool{false, false}},
	{healthy: []int{71, 100}, traffic: []int{99, 1}, panic: []bool{false, false}},
	{healthy: []int{50, 100}, traffic: []int{70, 30}, panic: []bool{false, false}},
	{healthy: []int{25, 100}, traffic: []int{35, 65}, panic: []bool{false, false}},
	{healthy: []int{0, 100}, traffic: []int{0, 100}, panic: []bool{false, false}},
	{healthy: []int{72, 72}, traffic: []int{100, 0}, panic: []bool{false, false}},
	{healthy: []int{71, 71}, traffic: []int{99, 1}, panic: []bool{false, false}},
	{healthy: []int{50, 60}, traffic: []int{70, 30}, panic: []bool{false, false}},
	{healthy: []int{25, 100}, traffic: []int{35, 65}, panic: []bool{false, false}},
	{healthy: []int{25, 25}, traffic: []int{50, 50}, panic: []bool{true, true}},
	{healthy: []int{5, 65}, traffic: []int{7, 93}, panic: []bool{true, false}},
}

func TestLevelSharesEnvoyExamples(t *testing.T) {
	check := func(t *testing.T, rows []envoyRow, threshold int64) {
		for _, r := range rows {
			var in []levelCount
			for _, h := range r.healthy {
				in = append(in, levelCount{total: 100, healthy: h})
			}
			got := levelShares(in, defaultOverprovision, threshold)
			for i, g := range got {
				wantPanic := r.panic != nil && r.panic[i]
				if g.share != r.traffic[i] || g.panicking != wantPanic {
					t.Errorf("healthy %v: level %d gets %d%% (panic %v), want %d%% (panic %v)",
						r.healthy, i, g.share, g.panicking, r.traffic[i], wantPanic)
				}
			}
		}
	}
	t.Run("priority", func(t *testing.T) { check(t, envoyPriorityRows, 0) })
	t.Run("panic", func(t *testing.T) { check(t, envoyPanicRows, ppm/2) })
	t.Run("total panic", func(t *testing.T) {
		tests := []struct {
			in   []levelCount
			want []int
		}{
			// When every level is in panic, the shares follow the numbers of
			// targets: 5 and 5 → 50/50, 2 and 8 → 20/80 (also with no healthy
			// target anywhere: every level at 0).
			{[]levelCount{{5, 0}, {5, 0}}, []int{50, 50}},
			{[]levelCount{{2, 0}, {8, 0}}, []int{20, 80}},
			{[]levelCount{{20, 2}, {80, 10}}, []int{20, 80}},
			{[]levelCount{{5, 0}, {6, 0}}, []int{45, 55}},
			// A level without a healthy target gets nothing while another
			// level has one.
			{[]levelCount{{4, 0}, {6, 1}}, []int{0, 100}},
		}
		for _, tt := range tests {
			got := levelShares(tt.in, defaultOverprovision, ppm/2)
			for i, g := range got {
				if g.share != tt.want[i] || !g.panicking {
					t.Errorf("%v: level %d gets %d%% (panic %v), want %d%% in panic", tt.in, i, g.share, g.panicking, tt.want[i])
				}
			}
		}
	})
	t.Run("no panic threshold", func(t *testing.T) {
		// Health rounds down to 0 with a healthy target left: it takes all.
		got := levelShares([]levelCount{{200, 0}, {200, 1}}, defaultOverprovision, 0)
		if got[0].share != 0 || got[1].share != 100 || got[1].panicking {
			t.Errorf("1 of 200 healthy: %+v, want every pick to its healthy target", got)
		}
		if got := levelShares([]levelCount{{4, 0}, {4, 0}}, defaultOverprovision, 0); got[0].share+got[1].share != 0 {
			t.Errorf("nothing healthy, no panic threshold: %+v, want no share", got)
		}
	})
}

func TestApportion(t *testing.T) {
	tests := []struct {
		w    []uint64
		want []int
	}{
		{[]uint64{7, 91}, []int{7, 93}},
		{[]uint64{35, 35, 28}, []int{36, 36, 28}},
		{[]uint64{1, 1, 1}, []int{34, 33, 33}},
		{[]uint64{0, 3}, []int{0, 100}},
		{[]uint64{0, 0}, []int{0, 0}},
	}
	for _, tt := range tests {
		if got := apportion(tt.w); !slices.Equal(got, tt.want) {
			t.Errorf("apportion(%v) = %v, want %v", tt.w, got, tt.want)
		}
	}
}

// levelTargets returns sizes[i] targets of priority i each.
func levelTargets(sizes ...int) [][]resolver.Address {
	out := make([][]resolver.Address, len(sizes))
	for p, n := range sizes {
		for i := range n {
			a := addr(0)
			a.IP = netip.AddrFrom4([4]byte{10, byte(p), byte(i >> 8), byte(i)})
			a.Priority = uint16(p)
			out[p] = append(out[p], a)
		}
	}
	return out
}

// The documented examples hold for the picks themselves: round robin walks
// the levels' shares exactly (per shard), a level in panic picks among all its targets
// and one not in panic among its healthy ones.
func TestPanicPicksEnvoyExamples(t *testing.T) {
	for _, r := range envoyPanicRows {
		t.Run(r.String(), func(t *testing.T) {
			levels := levelTargets(100, 100)
			c := newChecker(t, slices.Concat(levels...)...)
			b := New(c, WithPanicThreshold(0.5))
			for p, h := range r.healthy {
				setUnhealthy(t, c, levels[p][h:]...)
			}
			const cycles = 3
			got := shardCounts(t, b, 0, cycles*100) // exact per shard
			for p, lv := range levels {
				picked, unhealthy := 0, 0
				for i, a := range lv {
					picked += got[a.Key()]
					if i >= r.healthy[p] {
						unhealthy += got[a.Key()]
					}
				}
				if picked != cycles*r.traffic[p] {
					t.Errorf("level %d: %d of %d picks, want %d", p, picked, cycles*100, cycles*r.traffic[p])
				}
				switch {
				case r.panic[p] && picked > 0 && unhealthy == 0:
					t.Errorf("level %d in panic picked no unhealthy target", p)
				case !r.panic[p] && unhealthy > 0:
					t.Errorf("level %d not in panic picked unhealthy targets %d times", p, unhealthy)
				}
			}
		})
	}
}

// A level whose every target is unhealthy gets no pick while a worse level
// has a healthy target: with or without Envoy's priority load, with or
// without a panic threshold, and under every policy.
func TestLevelWithoutHealthyGetsNoPicks(t *testing.T) {
	modes := []struct {
		name string
		opts []Option
	}{
		{"strict", nil},
		{"overprovisioning", []Option{WithOverprovisioningFactor(1.4)}},
		{"panic threshold", []Option{WithPanicThreshold(0.5)}},
	}
	for _, m := range modes {
		for _, p := range policies {
			t.Run(m.name+"/"+p.String(), func(t *testing.T) {
				levels := levelTargets(4, 4)
				c := newChecker(t, slices.Concat(levels...)...)
				b := New(c, append([]Option{WithPolicy(p)}, m.opts...)...)
				setUnhealthy(t, c, levels[0]...)
				setUnhealthy(t, c, levels[1][1:]...) // 1 of 4 healthy: below the threshold too
				got := counts(t, b, 2000)
				for _, a := range levels[0] {
					if n := got[a.Key()]; n > 0 {
						t.Errorf("%v of the level without a healthy target picked %d times", a, n)
					}
				}
				if got[levels[1][0].Key()] == 0 {
					t.Error("the healthy target of the worse level was never picked")
				}
			})
		}
	}
}

// When every level is at 0, a panic threshold sends the picks to every
// level in proportion to its number of targets; without one there is none.
func TestEveryLevelAtZero(t *testing.T) {
	levels := levelTargets(2, 8)
	all := slices.Concat(levels...)
	c := newChecker(t, all...)
	setUnhealthy(t, c, all...)
	if _, err := New(c, WithOverprovisioningFactor(1.4)).Pick(); !errors.Is(err, ErrNoHealthy) {
		t.Errorf("no panic threshold: err = %v, want ErrNoHealthy", err)
	}
	b := New(c, WithPanicThreshold(0.5))
	got := shardCounts(t, b, 0, 300) // exact per shard
	n0 := 0
	for _, a := range levels[0] {
		n0 += got[a.Key()]
	}
	if n0 != 60 {
		t.Errorf("level of 2 targets: %d of 300 picks, want 60 (20%%)", n0)
	}
	for _, a := range all {
		if got[a.Key()] == 0 {
			t.Errorf("%v never picked in total panic", a)
		}
	}
}

// The overprovisioning factor decides when traffic spills over: with 1.0 a
// level at 90% keeps 90% of the picks.
func TestOverprovisioningFactor(t *testing.T) {
	for _, tt := range []struct {
		factor float64
		want   int
	}{{1.0, 90}, {1.4, 100}, {0, 100}} {
		levels := levelTargets(10, 10)
		c := newChecker(t, slices.Concat(levels...)...)
		setUnhealthy(t, c, levels[0][9])
		b := New(c, WithOverprovisioningFactor(tt.factor))
		got := shardCounts(t, b, 0, 200) // exact per shard
		n0 := 0
		for _, a := range levels[0] {
			n0 += got[a.Key()]
		}
		if n0 != 2*tt.want {
			t.Errorf("factor %v: level 0 at 90%% took %d of 200 picks, want %d", tt.factor, n0, 2*tt.want)
		}
	}
}

// The worked example of the package documentation: priority 10 with 5
// targets, priority 20 with 6, WithPanicThreshold(0.5).
func TestWorkedExample(t *testing.T) {
	tests := []struct {
		healthy10, healthy20 int
		share10, share20     int
		panic10, panic20     bool
	}{
		{5, 6, 100, 0, false, false},
		{4, 6, 100, 0, false, false},
		{3, 6, 84, 16, false, false},
		{2, 6, 56, 44, false, false},
		{1, 3, 29, 71, true, false},
		{1, 2, 45, 55, true, true},
		{0, 1, 0, 100, true, true},
		{0, 0, 45, 55, true, true},
	}
	for _, tt := range tests {
		got := levelShares([]levelCount{{5, tt.healthy10}, {6, tt.healthy20}}, defaultOverprovision, ppm/2)
		want := []levelShare{{tt.share10, tt.panic10}, {tt.share20, tt.panic20}}
		if !slices.Equal(got, want) {
			t.Errorf("%d of 5 and %d of 6 healthy: %+v, want %+v", tt.healthy10, tt.healthy20, got, want)
		}
	}
}
