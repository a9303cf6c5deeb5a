package balancer

import (
	"testing"
)

func TestWeightedShares(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint16
		want    []int // picks per cycle
	}{
		{"zero counts as one", []uint16{0, 1, 2, 5}, []int{1, 1, 2, 5}},
		{"gcd reduced", []uint16{10, 20, 30}, []int{1, 2, 3}},
		{"equal", []uint16{7, 7, 7}, []int{1, 1, 1}},
		{"extreme", []uint16{65535, 1}, []int{65535, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := addrs(len(tt.weights))
			for i, w := range tt.weights {
				as[i].Weight = w
			}
			c := newChecker(t, as...)
			b := New(c)                         // RoundRobin: weighted when weights differ
			if _, err := b.Pick(); err != nil { // not at the start of a cycle
				t.Fatal(err)
			}
			cycle := 0
			for _, w := range tt.want {
				cycle += w
			}
			// Any cycle-long run of one shard's picks holds exactly the
			// weights' shares.
			for j := range b.shards.n {
				shardPicks(t, b, j, j+1) // shards at different places of their cycles
				got := shardCounts(t, b, j, 3*cycle)
				for i, a := range as {
					if got[a.Key()] != 3*tt.want[i] {
						t.Errorf("shard %d: %v (weight %d): %d picks in 3 cycles, want %d", j, a, a.Weight, got[a.Key()], 3*tt.want[i])
					}
				}
			}
		})
	}
}

// A heavy target's picks are spread over the cycle, not bunched: between two
// picks of a shard for a target with share w/W there are at most ⌈W/w⌉
// other picks.
func TestWeightedSmooth(t *testing.T) {
	as := addrs(3)
	as[0].Weight, as[1].Weight, as[2].Weight = 5, 1, 1
	c := newChecker(t, as...)
	b := New(c, WithPolicy(WeightedRoundRobin))
	seq := shardPicks(t, b, 0, 70) // one shard's sequence
	for _, a := range as {
		maxGap := (7 + int(a.Weight) - 1) / int(a.Weight)
		last := -1
		for i, x := range seq {
			if x.Key() != a.Key() {
				continue
			}
			if last >= 0 && i-last > maxGap+1 {
				t.Errorf("%v (weight %d): gap of %d picks, want at most %d", a, a.Weight, i-last, maxGap+1)
			}
			last = i
		}
	}
}

func TestScheduleScalesLargeSums(t *testing.T) {
	as := addrs(200)
	for i := range as {
		as[i].Weight = uint16(60000 + i) // coprime-ish: Σ ≈ 12M
	}
	s := schedule(addrWeights(as))
	if len(s) > maxSchedule+len(as) {
		t.Fatalf("schedule of %d slots, want at most %d", len(s), maxSchedule+len(as))
	}
	n := make([]int, len(as))
	for _, i := range s {
		n[i]++
	}
	for i, v := range n {
		if v == 0 {
			t.Errorf("target %d has no slot", i)
		}
	}
}
