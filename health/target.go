package health

import (
	"slices"
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
	LastProbe     time.Time // when the last active probe started (it may be in flight); zero if none has
	// Probe is the last probe whose outcome was applied; zero before the first.
	Probe ProbeRecord
	// History is the target's last status and verdict changes, oldest first,
	// at most HistorySize: one per StatusChange published about it. It moves
	// into memory and back with the rest of the state.
	History []Transition
	// Departed is when a remembered target left; zero for a live one.
	Departed time.Time
}

// ProbeRecord is what a target keeps of its last probe.
type ProbeRecord struct {
	Start      time.Time     // when it started
	Duration   time.Duration // how long it took
	Outcome    ProbeOutcome
	StatusCode int    // the HTTP status; 0 for other probes and when no response arrived
	Reason     string // what was probed and how it went: "HTTP 404 from GET /healthz", "connection refused", ...
}

// HistorySize is how many status changes a target keeps (Target.History).
const HistorySize = 16

// Transition is one change of a target's status or of one of its verdicts,
// as kept in Target.History: the StatusChange that was published, without
// the name and address.
type Transition struct {
	At              time.Time
	From, To        Status // the target's status before and after
	Active, Passive Status // the verdicts after it
	Reason          string
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
	epoch    uint64     // bumped when probe settings change or a fleet stops this target's probing: results of older probes are dropped
	seen     uint64     // reconcile stamp
}

func (t *target) snapshot() Target { return snapshotOf(t.addr, &t.state) }

// snapshot returns what a remembered target will be when it returns.
func (r *remembered) snapshot() Target {
	t := snapshotOf(r.addr, &r.state)
	t.Departed = r.at
	return t
}

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
		Probe:         s.probe,
		History:       slices.Clone(s.history),
	}
}
