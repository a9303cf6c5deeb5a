package balancer

import (
	"slices"
	"strconv"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Outcome is how a picked request went. Values from 100 to 999 are HTTP
// status codes (see HTTPStatus); the named constants are the others.
type Outcome int

const (
	// Success counts as a passive success (ReportSuccess).
	Success Outcome = -1 - iota
	// ConnFailure means the connection was refused, reset or closed without
	// an answer (ReportTCPFailure).
	ConnFailure
	// Timeout means the request timed out (ReportTimeout).
	Timeout
	// Ignore reports nothing, for example when the caller gave up.
	Ignore
	// Failure means the backend answered with a failure of its protocol's
	// own (Call.DoneFailure; ReportFailure); Done(Failure) reports one with
	// the reason "failure".
	Failure
)

// HTTPStatus returns the outcome of a response with status code, judged by the
// checker's passive status lists (ReportHTTPStatus).
func HTTPStatus(code int) Outcome { return Outcome(code) }

// String describes the outcome.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ConnFailure:
		return "connection failure"
	case Timeout:
		return "timeout"
	case Ignore:
		return "ignore"
	case Failure:
		return "failure"
	}
	return "http " + strconv.Itoa(int(o))
}

// Call is a pick whose outcome is still to be reported. Call Done (or
// DoneRetryAfter) exactly once when the request is over. The zero Call's
// Done does nothing.
type Call struct {
	// Address is the picked address.
	Address resolver.Address

	b     *Balancer
	load  *load
	start int64 // PeakEWMA: balancer time of the pick
}

// PickCall picks as Pick does and counts a request in flight to the picked
// address until Done (LeastRequest and PeakEWMA pick by these counts; Loads
// shows them under every policy). Under PeakEWMA the time from PickCall to
// Done is the request's latency.
func (b *Balancer) PickCall() (Call, error) {
	s := b.current()
	if s.err != nil {
		return Call{}, s.err
	}
	lv := s.level(b.shards)
	return b.call(lv, lv.picker.pick(b.shards)), nil
}

// PickKeyCall picks as PickKey does and counts a request in flight until Done.
func (b *Balancer) PickKeyCall(key string) (Call, error) {
	s := b.current()
	if s.err != nil {
		return Call{}, s.err
	}
	lv, i := s.keyIndex(b.shards, key)
	return b.call(lv, i), nil
}

// PickCallExcept picks as PickCall does, but never one of the addresses in
// skip (tried already, or not connected): the policy's pick when it is not
// in skip, else the next candidate after it in its level, then in the other
// levels, best first. It fails with an error matching ErrNoHealthy when
// there is no candidate or every candidate is in skip.
func (b *Balancer) PickCallExcept(skip []resolver.Key) (Call, error) {
	tried := skip
	s := b.current()
	if s.err != nil {
		return Call{}, s.err
	}
	lv := s.level(b.shards)
	i := lv.picker.pick(b.shards)
	if !slices.Contains(tried, lv.addrs[i].Key()) {
		return b.call(lv, i), nil
	}
	// The policy's pick was tried already: the next untried candidate after
	// it in its level, then in the other levels, best first.
	for k := 1; k < len(lv.addrs); k++ {
		j := (i + k) % len(lv.addrs)
		if !slices.Contains(tried, lv.addrs[j].Key()) {
			return b.call(lv, j), nil
		}
	}
	for li := range s.levels {
		o := &s.levels[li]
		for j, a := range o.addrs {
			if !slices.Contains(tried, a.Key()) {
				return b.call(o, j), nil
			}
		}
	}
	n := 0
	for li := range s.levels {
		n += len(s.levels[li].addrs)
	}
	return Call{}, &NoHealthyError{Upstream: b.name, Skipped: n}
}

// call counts a Call to the candidate i of lv.
func (b *Balancer) call(lv *level, i int) Call {
	c := Call{Address: lv.addrs[i], b: b, load: lv.loads[i]}
	c.load.picked.Add(1)
	if b.pol.timed {
		c.start = b.now()
	}
	return c
}

// Done ends the call: it reports o to the checker's passive checks, stops
// counting the request in flight and, under PeakEWMA, folds its latency into
// the address's estimate.
func (c Call) Done(o Outcome) {
	b := c.b
	if b == nil {
		return
	}
	c.end(o)
	switch {
	case o == Success:
		b.reports.ReportSuccess(c.Address)
	case o == ConnFailure:
		b.reports.ReportTCPFailure(c.Address)
	case o == Timeout:
		b.reports.ReportTimeout(c.Address)
	case o == Failure:
		b.reports.ReportFailure(c.Address, "failure")
	case o >= 100 && o <= 999:
		b.reports.ReportHTTPStatus(c.Address, int(o))
	}
}

// DoneRetryAfter ends the call for a response with status code (429 or
// 503, say) whose Retry-After header advised coming back after d (see
// health.ParseRetryAfter): it reports health.Checker.ReportRetryAfter
// instead of ReportHTTPStatus, and is otherwise Done(HTTPStatus(code)).
func (c Call) DoneRetryAfter(code int, d time.Duration) {
	b := c.b
	if b == nil {
		return
	}
	c.end(HTTPStatus(code))
	b.reports.ReportRetryAfter(c.Address, code, d)
}

// Cancel ends a call whose request was never sent (its address could not
// take it): it takes the pick back, which then counts neither in flight nor
// among the target's Picks (Loads), and reports and publishes nothing.
func (c Call) Cancel() {
	if c.load != nil {
		c.load.picked.Add(-1)
	}
}

// DoneFailure ends the call for a request the backend answered with a
// failure of its protocol's own (a gRPC status, say) for the reason given:
// it reports health.Checker.ReportFailure, an HTTP failure in the passive
// verdict, and publishes the Result as Failure.
func (c Call) DoneFailure(reason string) {
	b := c.b
	if b == nil {
		return
	}
	c.end(Failure)
	b.reports.ReportFailure(c.Address, reason)
}

// end does what every outcome shares: the latency, the count in flight and
// the Result.
func (c *Call) end(o Outcome) {
	b := c.b
	if b.pol.timed {
		now := b.now()
		bound := o == ConnFailure || o == Timeout || o == Ignore
		c.load.observe(now, float64(now-c.start), bound, b.tau)
	}
	c.load.ended.Add(1)
	b.results.publish(c.Address, o)
}
