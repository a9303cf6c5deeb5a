package health

import (
	"slices"
	"time"
)

// outcome is one check result, from a probe or a report.
type outcome int

const (
	ignored     outcome = iota // changes nothing (an unlisted HTTP status)
	success                    // a healthy status or a connection that opened
	httpFailure                // an unhealthy status
	tcpFailure                 // refused, reset, closed, TLS failure
	timeout                    // the deadline passed
)

// classifyStatus maps an HTTP status to an outcome with the given lists.
func classifyStatus(code int, healthy, unhealthy []int) outcome {
	switch {
	case slices.Contains(healthy, code):
		return success
	case slices.Contains(unhealthy, code):
		return httpFailure
	}
	return ignored
}

// thresholds are the counter limits of one source (active or passive).
type thresholds struct {
	successes, httpFailures, tcpFailures, timeouts int
}

func activeThresholds(c Config) thresholds {
	return thresholds{c.Active.Healthy.Successes, c.Active.Unhealthy.HTTPFailures,
		c.Active.Unhealthy.TCPFailures, c.Active.Unhealthy.Timeouts}
}

func passiveThresholds(c Config) thresholds {
	return thresholds{c.Passive.Healthy.Successes, c.Passive.Unhealthy.HTTPFailures,
		c.Passive.Unhealthy.TCPFailures, c.Passive.Unhealthy.Timeouts}
}

// state is everything about a target that survives its removal: it moves
// into memory and back.
type state struct {
	status     Status
	successes  int // consecutive successes
	httpFails  int // consecutive HTTP failures
	tcpFails   int // consecutive TCP failures
	timeouts   int // consecutive timeouts
	lastChange time.Time
	lastProbe  time.Time
	// untilFirst: the target started Unhealthy (Config.Initial) and has
	// not passed a check yet; its first success makes it healthy.
	untilFirst bool
}

// record counts o and returns the new status, which differs from the old
// one when a threshold of th was reached.
func (s *state) record(o outcome, th thresholds) Status {
	if o == ignored {
		return s.status
	}
	if o == success {
		first := s.untilFirst
		s.untilFirst = false
		s.successes++
		s.httpFails, s.tcpFails, s.timeouts = 0, 0, 0
		if s.status == Unhealthy && (first || s.successes >= th.successes) {
			return Healthy
		}
		return s.status
	}
	s.successes = 0
	switch o {
	case httpFailure:
		s.httpFails++
	case tcpFailure:
		s.tcpFails++
	case timeout:
		s.timeouts++
	}
	if s.status == Healthy && s.failing(th) {
		return Unhealthy
	}
	return s.status
}

// failing reports whether a failure counter has reached its threshold.
func (s *state) failing(th thresholds) bool {
	return s.httpFails >= th.httpFailures || s.tcpFails >= th.tcpFailures || s.timeouts >= th.timeouts
}

// reevaluate returns the status s should have after thresholds changed from
// old to cur: a limit that was lowered and is now reached by the current
// counters moves the target, as if the last outcome had been judged with the
// new limit. Limits that did not change move nothing, so an Update that does
// not lower a threshold changes no status.
func (s *state) reevaluate(old, cur thresholds) Status {
	reached := func(n, o, c int) bool { return c < o && n >= c }
	switch s.status {
	case Healthy:
		if reached(s.httpFails, old.httpFailures, cur.httpFailures) ||
			reached(s.tcpFails, old.tcpFailures, cur.tcpFailures) ||
			reached(s.timeouts, old.timeouts, cur.timeouts) {
			return Unhealthy
		}
	case Unhealthy:
		if !s.untilFirst && reached(s.successes, old.successes, cur.successes) {
			return Healthy
		}
	}
	return s.status
}
