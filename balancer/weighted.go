package balancer

import "github.com/vigil-go/vigil/resolver"

// maxSchedule bounds a weighted schedule's length; larger weight sums are
// scaled down to it (each target keeping at least one slot).
const maxSchedule = 1 << 16

// weight is a target's weight: SRV weight 0 counts as 1.
func weight(a resolver.Address) uint64 { return max(uint64(a.Weight), 1) }

// addrWeights returns the weights of addrs.
func addrWeights(addrs []resolver.Address) []uint64 {
	w := make([]uint64, len(addrs))
	for i, a := range addrs {
		w[i] = weight(a)
	}
	return w
}

// addrSchedule returns the smooth weighted schedule of addrs by their SRV
// weights, or nil when the weights are all equal.
func addrSchedule(addrs []resolver.Address) []int32 {
	if equalWeights(addrs) {
		return nil
	}
	return schedule(addrWeights(addrs))
}

// equalWeights reports whether every address of addrs has the same weight.
func equalWeights(addrs []resolver.Address) bool {
	for _, a := range addrs {
		if weight(a) != weight(addrs[0]) {
			return false
		}
	}
	return true
}

// schedule returns one cycle of the smooth weighted order of entries with
// weights w (each at least 1), and overwrites w: entry i appears w[i]/g
// times (g the weights' gcd), its appearances evenly spaced, at virtual
// times (k+½)/w. It returns nil when all weights are equal, where plain
// rotation is the same thing.
func schedule(w []uint64) []int32 {
	n := len(w)
	g, equal := uint64(0), true
	for i := range w {
		g = gcd(g, w[i])
		equal = equal && w[i] == w[0]
	}
	if equal {
		return nil
	}
	var total uint64
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if limit := uint64(max(maxSchedule, 2*n)); total > limit {
		sum := total
		total = 0
		for i := range w {
			w[i] = max(w[i]*limit/sum, 1)
			total += w[i]
		}
	}
	// A min-heap of targets by their next virtual time (2k+1)/(2w).
	k := make([]uint64, n)
	h := make([]int32, n)
	for i := range h {
		h[i] = int32(i)
	}
	less := func(x, y int32) bool {
		l, r := (2*k[x]+1)*w[y], (2*k[y]+1)*w[x]
		return l < r || l == r && x < y
	}
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= n {
				return
			}
			if c+1 < n && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := n/2 - 1; i >= 0; i-- {
		down(i)
	}
	out := make([]int32, 0, total)
	for range total {
		t := h[0]
		out = append(out, t)
		k[t]++
		down(0)
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
