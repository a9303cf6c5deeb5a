package health

import (
	"strconv"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/resolver"
)

// ProbeOutcome is how an active probe ended.
type ProbeOutcome int

// The outcomes of a probe. The order matches the checker's own outcomes.
const (
	// ProbeIgnored: the HTTP status is in neither status list; no counter moved.
	ProbeIgnored ProbeOutcome = iota
	// ProbeSuccess: a healthy HTTP status, or a TCP connection that opened.
	ProbeSuccess
	// ProbeHTTPFailure: an unhealthy HTTP status.
	ProbeHTTPFailure
	// ProbeTCPFailure: refused, reset or closed connection, TLS failure.
	ProbeTCPFailure
	// ProbeTimeout: the probe's deadline passed.
	ProbeTimeout
)

// String returns "ignored", "success", "http_failure", "tcp_failure" or
// "timeout".
func (o ProbeOutcome) String() string {
	switch o {
	case ProbeIgnored:
		return "ignored"
	case ProbeSuccess:
		return "success"
	case ProbeHTTPFailure:
		return "http_failure"
	case ProbeTCPFailure:
		return "tcp_failure"
	case ProbeTimeout:
		return "timeout"
	}
	return "ProbeOutcome(" + strconv.Itoa(int(o)) + ")"
}

// ProbeResult is published on ProbeTopic(Name) for every active probe whose
// outcome the checker applied (Stats.ProbesCompleted counts the same probes).
// A probe whose outcome was dropped, because its target left or the probe
// settings changed while it ran, is not published.
type ProbeResult struct {
	Name       string           // the upstream
	Address    resolver.Address // the target probed
	Type       ProbeType
	Outcome    ProbeOutcome
	StatusCode int           // the HTTP status; 0 for other probes and when no response arrived
	Reason     string        // why: "HTTP 500", "connection refused", "timeout after 1s", a Prober's reason, ...
	Duration   time.Duration // from the start of the probe to its outcome
}

// ProbeTopic returns the bus topic on which the checker of the upstream name
// publishes a ProbeResult after each probe. It is an event topic: its
// subscribers receive every result published after they subscribed, in
// publish order; results of probes that end at about the same time may be
// published in either order.
//
// The checker publishes one value per probe, outside its lock, whether or not
// anyone subscribes; a bus with no subscriber on the topic keeps nothing of
// it. A checker built with a nil bus publishes nothing.
func ProbeTopic(name string) events.Topic[ProbeResult] {
	return events.NewTopic[ProbeResult]("health.probe/" + resolver.NormalizeName(name))
}

// publishProbe publishes the result of a probe; c.mu is not held.
func (c *Checker) publishProbe(addr resolver.Address, typ ProbeType, res probed, d time.Duration) {
	if c.bus == nil {
		return
	}
	events.Publish(c.bus, ProbeTopic(c.name), ProbeResult{
		Name:       c.name,
		Address:    addr,
		Type:       typ,
		Outcome:    ProbeOutcome(res.o),
		StatusCode: res.code,
		Reason:     res.reason,
		Duration:   d,
	})
}
