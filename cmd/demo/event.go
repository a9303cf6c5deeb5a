package main

import (
	"fmt"
	"time"
)

// event is one line of the demo's output: a step of the story, something
// the pipeline did, or the final summary. Plain output prints Text; -json
// prints the whole event.
type event struct {
	T     float64 `json:"t"`               // seconds since the start
	Type  string  `json:"type"`            // see the kinds below
	World string  `json:"world,omitempty"` // "vigil" or "rebuild"
	Addr  string  `json:"addr,omitempty"`
	From  string  `json:"from,omitempty"`
	To    string  `json:"to,omitempty"`
	Text  string  `json:"text"`

	Targets []row      `json:"targets,omitempty"` // "state" events
	Summary []*summary `json:"summary,omitempty"` // the "summary" event
	// The run's verdict, in the "summary" event only: whether vigil held
	// every invariant and every step showed what it should (exit status 0).
	Passed *bool `json:"passed,omitempty"`
}

// Event kinds.
const (
	evStart   = "start"   // what runs where
	evStep    = "step"    // a step of the story begins
	evDNS     = "dns"     // the resolver published a Change
	evFailure = "failure" // a DNS lookup failed
	evTarget  = "target"  // the checker added or removed a target
	evProbe   = "probe"   // a new target's first probe
	evStatus  = "status"  // a target changed status
	evReset   = "reset"   // an unhealthy target turned healthy although its backend still fails
	evCheck   = "check"   // what a step was meant to show, and whether it did
	evState   = "state"   // the table, at the end of a step
	evSummary = "summary" // the final counts
	evReady   = "ready"   // watch: a target is healthy at last, or never was
)

// clock stamps events with the time since the start of a run.
type clock struct{ start time.Time }

func (c clock) since() float64 { return time.Since(c.start).Seconds() }

// newEvent returns an event of type typ stamped now.
func (c clock) newEvent(typ, world, format string, args ...any) event {
	return event{T: c.since(), Type: typ, World: world, Text: fmt.Sprintf(format, args...)}
}
