package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Target is a snapshot of one target's state.
type Target struct {
	Address resolver.Address
	Status  Status
	// Consecutive outcomes: a success resets the failure counters, a failure
	// resets Successes. Probes and reports count alike.
	Successes    int
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
	LastChange   time.Time // when Status last changed, or when the target was first added
	LastProbe    time.Time // when the last active probe started; zero if none has
}

// target is a live target. All fields are guarded by Checker.mu.
type target struct {
	addr  resolver.Address
	state state

	next     time.Time // when the next probe is due, while queued
	index    int       // position in the schedule heap; -1 when not queued
	inFlight bool      // a probe has been handed to a worker
	epoch    uint64    // bumped when probe settings change: results of older probes are dropped
	seen     uint64    // reconcile stamp
}

func (t *target) snapshot() Target {
	s := &t.state
	return Target{
		Address:      t.addr,
		Status:       s.status,
		Successes:    s.successes,
		HTTPFailures: s.httpFails,
		TCPFailures:  s.tcpFails,
		Timeouts:     s.timeouts,
		LastChange:   s.lastChange,
		LastProbe:    s.lastProbe,
	}
}
