package vigilgrpc

import (
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
}

// newOutcomes returns the classification with failure codes fail.
func newOutcomes(fail []codes.Code) *outcomes {
	o := &outcomes{}
	for _, c := range fail {
		if int(c) < len(o.failures) {
			o.failures[c] = true
		}
	}
	return o
}

// ender is what an RPC's outcome is reported to: a balancer.Call, or
// direct when the pick did not come from the vigil balancer. done takes it
// as a type parameter, so that a Call is not boxed for every RPC.
type ender interface {
	Done(balancer.Outcome)
	DoneRetryAfter(code int, d time.Duration)
	DoneFailure(reason string)
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

// DoneFailure reports a failure of the backend's, for reason.
func (d direct) DoneFailure(reason string) { d.chk.ReportFailure(d.addr, reason) }

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
	if o.failure(code) {
		call.DoneFailure("gRPC " + code.String()) // the reason is made once per RPC that fails
		return
	}
	call.Done(o.classify(code))
}

// failure reports whether code is configured as a failure of the backend.
func (o *outcomes) failure(code codes.Code) bool {
	return int(code) < len(o.failures) && o.failures[code]
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
	if o.failure(code) {
		return balancer.Failure
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
