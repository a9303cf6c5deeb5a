package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Target is a snapshot of one target's state.
type Target struct {
	Address resolver.Address
	Status  Status // Unhealthy when either verdict is
	// Active and Passive are the verdicts of the probes and of the traffic,
	// each with its own counters; Passive is Unhealthy during an ejection.
	Active, Passive Status
	Reason          string // why the last verdict change happened
	// The active verdict's consecutive outcomes: a success resets the
	// failure counters, a failure resets Successes.
	Successes    int
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
	// PassiveCounts are the passive verdict's, counted the same way.
	PassiveCounts Counters
	EjectedUntil  time.Time // while ejected: when the ejection ends
	Probation     bool      // an ejection ended: one passive failure ejects again
	Ejections     int       // recent ejections (see Ejection)
	LastChange    time.Time // when Status last changed, or when the target was first added
	LastProbe     time.Time // when the last active probe started; zero if none has
}

// target is a live target. All fields are guarded by Checker.mu.
type target struct {
	addr  resolver.Address
	state state

	next     time.Time  // when the next probe is due, while queued
	index    int        // position in the schedule heap; -1 when not queued
	ejIndex  int        // position in the ejection heap; -1 when not ejected
	inFlight bool       // a probe is running
	conn     *probeConn // the HTTP(S) connection kept between probes; nil while a probe runs
	epoch    uint64     // bumped when probe settings change: results of older probes are dropped
	seen     uint64     // reconcile stamp
}

func (t *target) snapshot() Target { return snapshotOf(t.addr, &t.state) }

// snapshot returns what a remembered target will be when it returns.
func (r *remembered) snapshot() Target { return snapshotOf(r.addr, &r.state) }

func snapshotOf(a resolver.Address, s *state) Target {
	return Target{
		Address:       a,
		Status:        s.status(),
		Active:        s.active.status,
		Passive:       s.passive.status,
		Reason:        s.reason,
		Successes:     s.active.Successes,
		HTTPFailures:  s.active.HTTPFailures,
		TCPFailures:   s.active.TCPFailures,
		Timeouts:      s.active.Timeouts,
		PassiveCounts: s.passive.Counters,
		EjectedUntil:  s.passive.until,
		Probation:     s.passive.probation,
		Ejections:     s.passive.ejections,
		LastChange:    s.lastChange,
		LastProbe:     s.lastProbe,
	}
}
