package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// The Report methods count an outcome of real traffic to a in the passive
// verdict, judged with the passive thresholds apart from the probes (see
// Passive). Reports about addresses that are not targets are ignored.

// ReportSuccess counts a successful request to a.
func (c *Checker) ReportSuccess(a resolver.Address) { c.report(a, success, cause{text: "success"}) }

// ReportHTTPStatus counts a response status of a request to a: a success if
// code is in Passive.Healthy.HTTPStatuses, an HTTP failure if it is in
// Passive.Unhealthy.HTTPStatuses, nothing otherwise.
func (c *Checker) ReportHTTPStatus(a resolver.Address, code int) {
	c.report(a, ignored, cause{code: code})
}

// ReportTCPFailure counts a failed connection to a (refused, reset, closed).
func (c *Checker) ReportTCPFailure(a resolver.Address) {
	c.report(a, tcpFailure, cause{text: "connection failure"})
}

// ReportFailure counts a request to a that the backend answered with a
// failure of the protocol's own (a gRPC INTERNAL, say), for the reason
// given: an HTTP failure, the kind of failure an answer is, counted against
// Passive.Unhealthy.HTTPFailures.
func (c *Checker) ReportFailure(a resolver.Address, reason string) {
	c.report(a, httpFailure, cause{text: reason})
}

// ReportTimeout counts a request to a that timed out.
func (c *Checker) ReportTimeout(a resolver.Address) { c.report(a, timeout, cause{text: "timeout"}) }

// ReportRetryAfter counts a response with status code (429 or 503) that
// advised, with a Retry-After header, coming back after d (see
// ParseRetryAfter): the target is ejected for d, capped at the ejection's
// Max, and only that deadline ends the ejection. Any other code, or a d of
// 0 or less, counts as ReportHTTPStatus does. When outlier detection caps
// the share of ejected targets and the cap is reached, it counts as an
// HTTP failure instead.
func (c *Checker) ReportRetryAfter(a resolver.Address, code int, d time.Duration) {
	if (code != 429 && code != 503) || d <= 0 {
		c.ReportHTTPStatus(a, code)
		return
	}
	c.mu.Lock()
	t := c.targets[a.Key()]
	if t == nil {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	if !t.state.passive.ejected() && !c.mayEject() {
		c.mu.Unlock()
		c.report(a, httpFailure, cause{code: code})
		return
	}
	before := t.state.verdicts()
	c.settle(t, before, t.state.retryAfter(code, d, &c.rules, now), now)
	c.unlockAndFlush()
}

// report counts o, or for an HTTP status (o ignored, why.code set) the
// outcome the passive status lists give it, for a.
func (c *Checker) report(a resolver.Address, o outcome, why cause) {
	c.mu.Lock()
	if o == ignored {
		o = classifyStatus(why.code, c.cfg.Passive.Healthy.HTTPStatuses, c.cfg.Passive.Unhealthy.HTTPStatuses)
	}
	t := c.targets[a.Key()]
	if t == nil || o == ignored {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	before := t.state.verdicts()
	reason := t.state.reportOutcome(o, why, &c.rules, c.mayEject(), now, c.jitter())
	c.settle(t, before, reason, now)
	c.unlockAndFlush()
}

// cause is what a report says happened: an HTTP status, or a text. Its
// String, which allocates for a status, is only made when a verdict moves.
type cause struct {
	text string
	code int
}

func (c cause) String() string {
	if c.code != 0 {
		return statusReason(c.code)
	}
	return c.text
}
