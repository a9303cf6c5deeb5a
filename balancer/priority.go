package balancer

import (
	"slices"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// plan is what one priority level gets in a snapshot.
type plan struct {
	priority  uint16
	share     int  // percent of the picks, 1..100
	panicking bool // addrs are all the level's targets, healthy or not
	addrs     []resolver.Address
}

// strictPlan gives every pick to the best (lowest) priority that has a
// healthy target, as RFC 2782 asks of SRV clients. When all healthy targets
// share one priority it uses healthy itself.
func strictPlan(healthy []resolver.Address) []plan {
	if len(healthy) == 0 {
		return nil
	}
	best, mixed := healthy[0].Priority, false
	for _, a := range healthy[1:] {
		if a.Priority != best {
			mixed = true
			best = min(best, a.Priority)
		}
	}
	if !mixed {
		return []plan{{priority: best, share: 100, addrs: healthy}}
	}
	out := make([]resolver.Address, 0, len(healthy))
	for _, a := range healthy {
		if a.Priority == best {
			out = append(out, a)
		}
	}
	return []plan{{priority: best, share: 100, addrs: out}}
}

// tier is one priority level's targets, in canonical order.
type tier struct {
	priority uint16
	all      []resolver.Address
	healthy  []resolver.Address
}

// tiers splits targets (in canonical order) into priority levels, best
// first, and returns the healthy addresses in canonical order too.
func tiers(ts []health.Target) (healthy []resolver.Address, out []tier) {
	at := make(map[uint16]int, 4)
	for _, t := range ts {
		p := t.Address.Priority
		i, ok := at[p]
		if !ok {
			i = len(out)
			at[p] = i
			out = append(out, tier{priority: p})
		}
		out[i].all = append(out[i].all, t.Address)
		if t.Status == health.Healthy {
			out[i].healthy = append(out[i].healthy, t.Address)
			healthy = append(healthy, t.Address)
		}
	}
	slices.SortFunc(out, func(a, b tier) int { return int(a.priority) - int(b.priority) })
	return healthy, out
}

// envoyPlan distributes the picks over the priority levels of ts as Envoy
// does (see levelShares), with the overprovisioning factor in percent and
// the panic threshold in ppm (0: no panic).
func envoyPlan(ts []health.Target, factor int, panicPPM int64) ([]resolver.Address, []plan) {
	healthy, tt := tiers(ts)
	counts := make([]levelCount, len(tt))
	for i, t := range tt {
		counts[i] = levelCount{total: len(t.all), healthy: len(t.healthy)}
	}
	var out []plan
	for i, sh := range levelShares(counts, factor, panicPPM) {
		if sh.share == 0 {
			continue
		}
		p := plan{priority: tt[i].priority, share: sh.share, panicking: sh.panicking, addrs: tt[i].healthy}
		if sh.panicking {
			p.addrs = tt[i].all
		}
		out = append(out, p)
	}
	return healthy, out
}

// levelCount is a priority level's number of targets and of healthy ones.
type levelCount struct{ total, healthy int }

// levelShare is a priority level's share of the picks, in percent, and
// whether it is in panic.
type levelShare struct {
	share     int
	panicking bool
}

// levelShares computes the priority load of Envoy's documentation
// (arch_overview/upstream/load_balancing/priority and panic_threshold), for
// levels best first:
//
//   - health(L) = min(100, factor × healthy(L) / total(L)), in integer percent
//   - normalized total availability NTA = min(100, Σ health)
//   - with Σ health ≥ 100, each level takes min(what is left of 100,
//     health(L)), best first; below 100, the 100 percent are shared in
//     proportion to health(L) / NTA, rounded to whole percents by largest
//     remainder (the documented examples: health {7, 91} → {7, 93},
//     {35, 35, 28} → {36, 36, 28})
//   - with a panic threshold and NTA < 100, a level whose healthy fraction
//     is below the threshold is in panic: its share goes to all its targets
//   - when every level is in panic, the shares follow the levels' numbers
//     of targets instead (5 and 5 → 50/50; 2 and 8 → 20/80), counting only
//     levels with a healthy target while there is one
//   - without a panic threshold, NTA = 0 with a healthy target somewhere
//     (health rounds down to 0) gives every pick to the best level with a
//     healthy target; with no healthy target at all there is no candidate.
//
// A level whose share is 0 gets no picks: a level without a healthy target
// gets none while another level has one.
func levelShares(levels []levelCount, factor int, panicPPM int64) []levelShare {
	out := make([]levelShare, len(levels))
	health := make([]int, len(levels))
	sum := 0
	for i, l := range levels {
		if l.total > 0 {
			health[i] = min(100, factor*l.healthy/l.total)
		}
		sum += health[i]
	}
	nta := min(100, sum)
	if panicPPM > 0 && nta < 100 {
		all := true
		for i, l := range levels {
			out[i].panicking = l.total > 0 && int64(l.healthy)*ppm < panicPPM*int64(l.total)
			all = all && out[i].panicking
		}
		if all {
			return totalPanic(levels)
		}
	}
	if nta == 0 {
		for i, l := range levels {
			if l.healthy > 0 {
				out[i] = levelShare{share: 100}
				return out
			}
		}
		return out
	}
	if sum >= 100 {
		left := 100
		for i := range levels {
			out[i].share = min(left, health[i])
			left -= out[i].share
		}
		return out
	}
	w := make([]uint64, len(levels))
	for i, h := range health {
		w[i] = uint64(h)
	}
	for i, s := range apportion(w) {
		out[i].share = s
	}
	return out
}

// totalPanic shares the picks in proportion to the levels' numbers of
// targets, among the levels with a healthy target, or among all levels when
// none has one; every level is in panic.
func totalPanic(levels []levelCount) []levelShare {
	w := make([]uint64, len(levels))
	someHealthy := false
	for _, l := range levels {
		someHealthy = someHealthy || l.healthy > 0
	}
	for i, l := range levels {
		if l.healthy > 0 || !someHealthy {
			w[i] = uint64(l.total)
		}
	}
	out := make([]levelShare, len(levels))
	for i, s := range apportion(w) {
		out[i] = levelShare{share: s, panicking: true}
	}
	return out
}

// apportion shares 100 percent in proportion to w by the largest remainder
// method: every entry gets the integer part of its exact share, and the
// percents left go to the largest fractional parts (the earlier entry on a
// tie). All zeros when w sums to 0.
func apportion(w []uint64) []int {
	out := make([]int, len(w))
	var sum uint64
	for _, x := range w {
		sum += x
	}
	if sum == 0 {
		return out
	}
	rem := make([]uint64, len(w))
	left := 100
	for i, x := range w {
		out[i] = int(100 * x / sum)
		rem[i] = 100 * x % sum
		left -= out[i]
	}
	for ; left > 0; left-- {
		best := -1
		for i, r := range rem {
			if w[i] > 0 && (best < 0 || r > rem[best]) {
				best = i
			}
		}
		out[best]++
		rem[best] = 0
	}
	return out
}
