package balancer

import (
	"strconv"

	"github.com/vigil-go/vigil/resolver"
)

// Policy selects how a Balancer picks among the candidate targets of a
// priority level.
type Policy int

const (
	// RoundRobin (the default) rotates over the candidates in canonical
	// order, one rotation per shard (see the package documentation); when
	// their SRV weights differ it follows the smooth weighted schedule
	// instead.
	RoundRobin Policy = iota
	// LeastRequest picks the one of two random candidates with fewer
	// requests in flight.
	LeastRequest
	// ConsistentHash maps keys given to PickKey onto a hash ring.
	ConsistentHash
	// Random draws each pick from the calling thread's generator, in
	// proportion to SRV weights; it shares no counter between cores.
	Random
	// PeakEWMA picks the one of two random candidates with the lower cost:
	// the peak EWMA of its response times times its requests in flight
	// plus one.
	PeakEWMA
)

// WeightedRoundRobin is RoundRobin, which honours SRV weights whenever they
// differ. It is kept as a name for configurations that spell it out.
const WeightedRoundRobin = RoundRobin

// String returns the policy's name.
func (p Policy) String() string {
	if p < 0 || int(p) >= len(behaviours) {
		return "unknown(" + strconv.Itoa(int(p)) + ")"
	}
	return behaviours[p].name
}

// A picker picks among the candidates of one priority level of one
// snapshot, or among a snapshot's levels by their shares. Each policy is
// its own small type, built for every snapshot from the picker it replaces
// and the current candidates (as httplb's picker factories and CoreDNS
// forward's policies are). It is immutable once built, except for the
// counters it points to.
type picker interface {
	// pick returns the index of the candidate for a pick. sh tells the
	// calling goroutine's shard to a policy that writes per shard.
	pick(sh *shards) int
	// draw returns a random index in the policy's proportions: what slow
	// start draws again when its ramp refuses a pick.
	draw() int
}

// keyPicker is a picker that maps a key's hash onto a candidate.
type keyPicker interface {
	pickKey(h uint64) int
}

// candidates is what a policy builds a level's picker from.
type candidates struct {
	addrs  []resolver.Address // canonical order
	loads  []*load            // parallel to addrs
	shards int                // how many shards a rotation keeps
	tau    float64            // PeakEWMA's time constant in nanoseconds
}

// policy is what a Policy does.
type policy struct {
	name string
	// level builds the picker of a priority level from the picker the same
	// level had in the previous snapshot (nil when it had none) and the
	// level's candidates.
	level func(prev picker, c candidates) picker
	// across builds the chooser of a level, whose entries are the levels
	// with sched their smooth schedule of shares; prev is the previous
	// snapshot's chooser, if any.
	across func(prev picker, sched []int32, n, shards int) picker
	timed  bool // a Call measures its latency (PeakEWMA)
	keyed  bool // PickKey hashes the key onto the level's picker (a keyPicker)
}

// behaviours holds every Policy's behaviour, by its value.
var behaviours = [...]policy{
	RoundRobin:     {name: "round-robin", level: newRoundRobin, across: newRotation},
	LeastRequest:   {name: "least-request", level: newLeastRequest, across: newDraw},
	ConsistentHash: {name: "consistent-hash", level: newConsistentHash, across: newDraw, keyed: true},
	Random:         {name: "random", level: newRandom, across: newDraw},
	PeakEWMA:       {name: "peak-ewma", level: newPeakEWMA, across: newDraw, timed: true},
}
