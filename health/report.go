package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// ReportSuccess counts a successful request to a with the passive thresholds.
// Reports about addresses that are not targets are ignored.
func (c *Checker) ReportSuccess(a resolver.Address) { c.report(a, success) }

// ReportHTTPStatus counts a response status of a request to a: a success if
// code is in Passive.Healthy.HTTPStatuses, an HTTP failure if it is in
// Passive.Unhealthy.HTTPStatuses, nothing otherwise.
func (c *Checker) ReportHTTPStatus(a resolver.Address, code int) {
	c.mu.Lock()
	o := classifyStatus(code, c.cfg.Passive.Healthy.HTTPStatuses, c.cfg.Passive.Unhealthy.HTTPStatuses)
	c.mu.Unlock()
	c.report(a, o)
}

// ReportTCPFailure counts a failed connection to a (refused, reset, closed).
func (c *Checker) ReportTCPFailure(a resolver.Address) { c.report(a, tcpFailure) }

// ReportTimeout counts a request to a that timed out.
func (c *Checker) ReportTimeout(a resolver.Address) { c.report(a, timeout) }

func (c *Checker) report(a resolver.Address, o outcome) {
	if o == ignored {
		return
	}
	c.mu.Lock()
	if t := c.targets[a.Key()]; t != nil {
		c.record(t, o, c.passive, time.Now())
	}
	c.unlockAndFlush()
}

// ReportRetryAfter counts a response with status code that advised, with a
// Retry-After header, coming back after d (see ParseRetryAfter).
func (c *Checker) ReportRetryAfter(a resolver.Address, code int, d time.Duration) {
	_ = d
	c.ReportHTTPStatus(a, code)
}
