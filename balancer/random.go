package balancer

import "math/rand/v2"

// random draws each pick from the calling thread's generator, in
// proportion to the entries' weights. It writes nothing shared.
type random struct {
	sched []int32 // one cycle of the weighted schedule; nil: equal weights
	n     int
}

// newRandom is Random's picker of a level: its candidates' SRV weights
// make the proportions.
func newRandom(_ picker, c candidates) picker {
	return &random{sched: addrSchedule(c.addrs), n: len(c.addrs)}
}

// newDraw returns a random choice among n entries in the proportions of
// sched (nil: equal): how every policy but RoundRobin chooses a level.
func newDraw(_ picker, sched []int32, n, _ int) picker {
	return &random{sched: sched, n: n}
}

func (r *random) pick(*shards) int { return r.draw() }
func (r *random) draw() int        { return randomSlot(r.sched, r.n) }

// randN returns a uniform index in [0, n) from the calling thread's generator.
func randN(n int) int { return int((uint64(rand.Uint32()) * uint64(n)) >> 32) }

// slot returns the entry of a schedule (or, with none, of a plain rotation
// over size entries) at position n.
func slot(sched []int32, n uint64, size int) int {
	if sched == nil {
		return int(n % uint64(size))
	}
	return int(sched[n%uint64(len(sched))])
}

// randomSlot returns a random entry of a schedule, or a random index below
// size with none.
func randomSlot(sched []int32, size int) int {
	if sched == nil {
		return randN(size)
	}
	return int(sched[randN(len(sched))])
}

// twoIndices draws two distinct indices below n (n ≥ 2) with one draw.
func twoIndices(n int) (int, int) {
	r := rand.Uint64()
	i := int((r & 0xffffffff) * uint64(n) >> 32)
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}
