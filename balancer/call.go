package balancer

import (
	"strconv"

	"github.com/vigil-go/vigil/health"
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
	}
	return "http " + strconv.Itoa(int(o))
}

// Call is a pick whose outcome is still to be reported. Call Done exactly
// once when the request is over.
type Call struct {
	// Address is the picked address.
	Address resolver.Address

	c    *health.Checker
	load *load
	res  *resultPublisher
}

// PickCall picks as Pick does and counts a request in flight to the picked
// address (for LeastRequest) until Done.
func (b *Balancer) PickCall() (Call, error) {
	s := b.current()
	if len(s.addrs) == 0 {
		return Call{}, b.noHealthy
	}
	return s.call(b, s.index(b)), nil
}

// PickKeyCall picks as PickKey does and counts a request in flight until Done.
func (b *Balancer) PickKeyCall(key string) (Call, error) {
	s := b.current()
	if len(s.addrs) == 0 {
		return Call{}, b.noHealthy
	}
	return s.call(b, s.keyIndex(b, key)), nil
}

func (s *snapshot) call(b *Balancer, i int) Call {
	c := Call{Address: s.addrs[i], c: b.c, res: b.results}
	if s.loads != nil {
		c.load = s.loads[i]
		c.load.n.Add(1)
	}
	return c
}

// Done ends the call: it reports o to the checker's passive checks and stops
// counting the request in flight.
func (c Call) Done(o Outcome) {
	if c.load != nil {
		c.load.n.Add(-1)
	}
	c.res.publish(c.Address, o)
	if c.c == nil {
		return
	}
	switch {
	case o == Success:
		c.c.ReportSuccess(c.Address)
	case o == ConnFailure:
		c.c.ReportTCPFailure(c.Address)
	case o == Timeout:
		c.c.ReportTimeout(c.Address)
	case o >= 100 && o <= 999:
		c.c.ReportHTTPStatus(c.Address, int(o))
	}
}
