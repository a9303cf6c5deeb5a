package balancer

// roundRobin rotates over its entries, or walks their smooth weighted
// schedule, one position per shard.
type roundRobin struct {
	sched []int32 // one cycle of the weighted schedule; nil: plain rotation
	n     int
	rot   *rotor // kept from the picker it replaces
}

// newRoundRobin is RoundRobin's picker of a level: its candidates' SRV
// weights make the schedule.
func newRoundRobin(prev picker, c candidates) picker {
	return newRotation(prev, addrSchedule(c.addrs), len(c.addrs), c.shards)
}

// newRotation returns a rotation over n entries with the schedule sched
// (nil: plain), continuing from the positions of prev when it is one.
func newRotation(prev picker, sched []int32, n, shards int) picker {
	r := &roundRobin{sched: sched, n: n}
	if p, ok := prev.(*roundRobin); ok && len(p.rot.at) == shards {
		r.rot = p.rot
	} else {
		r.rot = newRotor(shards)
	}
	return r
}

func (r *roundRobin) pick(sh *shards) int { return r.at(sh.id()) }

// at advances shard i's position and returns its entry.
func (r *roundRobin) at(i int) int { return slot(r.sched, r.rot.next(i), r.n) }

func (r *roundRobin) draw() int { return randomSlot(r.sched, r.n) }
