package vigilgrpc

import (
	"slices"
	"strconv"
	"time"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// DefaultFailureCodes are the status codes that count as failures of the
// backend that served the RPC unless WithFailureCodes says otherwise:
// INTERNAL (the server broke its protocol or its handler crashed) and
// DATA_LOSS. UNKNOWN is not among them, since grpc-go servers return it for
// any plain error of a handler, which is the application's answer.
var DefaultFailureCodes = []codes.Code{codes.Internal, codes.DataLoss}

// pushbackKey is the trailer in which a server asks clients to wait before
// trying again (gRFC A6), in milliseconds.
const pushbackKey = "grpc-retry-pushback-ms"

// outcomes classifies the end of an RPC for the passive verdict of the
// address that served it.
type outcomes struct {
	failures [codes.Unauthenticated + 1]bool // codes that are failures
	// failStatus is the HTTP status a failure is reported as: the checker
	// judges failures by status, and this one is in its passive unhealthy
	// list.
	failStatus int
}

// newOutcomes returns the classification with failure codes fail, reported
// as the first status of unhealthy that is 500, else its first.
func newOutcomes(fail []codes.Code, unhealthy []int) *outcomes {
	o := &outcomes{failStatus: 500}
	for _, c := range fail {
		if int(c) < len(o.failures) {
			o.failures[c] = true
		}
	}
	if len(unhealthy) > 0 && !slices.Contains(unhealthy, 500) {
		o.failStatus = unhealthy[0]
	}
	return o
}

// ender is what an RPC's outcome is reported to: a balancer.Call, or
// direct when the pick did not come from the vigil balancer. done takes it
// as a type parameter, so that a Call is not boxed for every RPC.
type ender interface {
	Done(balancer.Outcome)
	DoneRetryAfter(code int, d time.Duration)
}

// direct reports outcomes of RPCs to an address straight to its checker,
// as balancer.Call.Done does.
type direct struct {
	chk  *health.Checker
	addr resolver.Address
}

// Done reports o.
func (d direct) Done(o balancer.Outcome) {
	switch {
	case o == balancer.Success:
		d.chk.ReportSuccess(d.addr)
	case o == balancer.ConnFailure:
		d.chk.ReportTCPFailure(d.addr)
	case o == balancer.Timeout:
		d.chk.ReportTimeout(d.addr)
	case o >= 100 && o <= 999:
		d.chk.ReportHTTPStatus(d.addr, int(o))
	}
}

// DoneRetryAfter reports a response that advised coming back after t.
func (d direct) DoneRetryAfter(code int, t time.Duration) { d.chk.ReportRetryAfter(d.addr, code, t) }

// done reports how the RPC of call ended: OK and codes not configured as
// failures are successes, since the backend answered; UNAVAILABLE is a
// connection failure, DEADLINE_EXCEEDED a timeout, CANCELLED nothing (the
// caller gave up); a failure code an HTTP failure. An UNAVAILABLE or
// RESOURCE_EXHAUSTED whose trailer carries grpc-retry-pushback-ms > 0
// ejects the address for that long, as an HTTP 503 or 429 with
// Retry-After does.
func done[E ender](o *outcomes, call E, di gbalancer.DoneInfo) {
	if di.Err == nil {
		call.Done(balancer.Success)
		return
	}
	code := status.Code(di.Err)
	if code == codes.Unavailable || code == codes.ResourceExhausted {
		if d, ok := pushback(di); ok {
			httpCode := 503
			if code == codes.ResourceExhausted {
				httpCode = 429
			}
			call.DoneRetryAfter(httpCode, d)
			return
		}
	}
	call.Done(o.classify(code))
}

// classify maps a status code to the outcome it reports.
func (o *outcomes) classify(code codes.Code) balancer.Outcome {
	switch code {
	case codes.OK:
		return balancer.Success
	case codes.Unavailable:
		return balancer.ConnFailure
	case codes.DeadlineExceeded:
		return balancer.Timeout
	case codes.Canceled:
		return balancer.Ignore
	}
	if int(code) < len(o.failures) && o.failures[code] {
		return balancer.HTTPStatus(o.failStatus)
	}
	return balancer.Success
}

// pushback returns the delay a server's trailer asks for, if it asks for
// one (a negative value means "do not retry", which is no advice on when).
func pushback(di gbalancer.DoneInfo) (time.Duration, bool) {
	vs := di.Trailer[pushbackKey]
	if len(vs) != 1 {
		return 0, false
	}
	ms, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || ms <= 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
