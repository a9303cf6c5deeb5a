package vigilgrpc

import (
	"strconv"
	"time"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/balancer"
)

// DefaultFailureCodes returns the status codes that count as failures of the
// backend that served the RPC unless WithFailureCodes says otherwise:
// INTERNAL (the server broke its protocol or its handler crashed) and
// DATA_LOSS. UNKNOWN is not among them, since grpc-go servers return it for
// any plain error of a handler, which is the application's answer.
func DefaultFailureCodes() []codes.Code { return []codes.Code{codes.Internal, codes.DataLoss} }

// pushbackKey is the trailer in which a server asks clients to wait before
// trying again (gRFC A6), in milliseconds.
const pushbackKey = "grpc-retry-pushback-ms"

// outcomes classifies the end of an RPC for the passive verdict of the
// address that served it.
type outcomes struct {
	failures [codes.Unauthenticated + 1]bool // codes that are failures
}

// newOutcomes returns the classification with failure codes fail. The
// codes whose meaning is fixed (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED)
// keep it: they are not made failures.
func newOutcomes(fail []codes.Code) *outcomes {
	o := &outcomes{}
	for _, c := range fail {
		switch c {
		case codes.OK, codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			continue
		}
		if int(c) < len(o.failures) {
			o.failures[c] = true
		}
	}
	return o
}

// done reports how the RPC of call ended: OK and codes not configured as
// failures are successes, since the backend answered; UNAVAILABLE is a
// connection failure, DEADLINE_EXCEEDED a timeout, CANCELLED nothing (the
// caller gave up); a failure code a failure of the backend's
// (ReportFailure, with the code's name as the reason). An UNAVAILABLE or
// RESOURCE_EXHAUSTED whose trailer carries grpc-retry-pushback-ms > 0
// ejects the address for that long, as an HTTP 503 or 429 with
// Retry-After does.
//
// A pick whose RPC never reached a server is no outcome (see reached): it
// is cancelled, reporting nothing and, under PeakEWMA, no latency.
func done(o *outcomes, call balancer.Call, di gbalancer.DoneInfo) {
	if !reached(di) {
		call.Cancel()
		return
	}
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
	switch {
	case code == codes.Unavailable:
		call.Done(balancer.ConnFailure)
	case code == codes.DeadlineExceeded:
		call.Done(balancer.Timeout)
	case code == codes.Canceled:
		call.Done(balancer.Ignore)
	case int(code) < len(o.failures) && o.failures[code]:
		call.DoneFailure(codeName(code)) // the reason is made once per RPC that fails
	default:
		call.Done(balancer.Success) // the backend answered: the application's answer
	}
}

// reached reports whether the RPC of a pick may have reached the server,
// by what grpc-go tells the pick's Done:
//
//   - nothing sent: the connection was found not ready after the pick
//     (grpc-go then picks again, calling Done with an empty DoneInfo), or
//     the stream could not be opened on it (closing, or refused before a
//     byte left, which grpc-go retries transparently);
//   - sent but nothing received, with UNAVAILABLE: the stream was written
//     to a connection that failed under it, or the server refused it
//     unprocessed (a GOAWAY, REFUSED_STREAM: grpc-go retries those
//     transparently too), or its headers never left a connection that was
//     closing. grpc-go does not tell these apart from a server that took
//     the RPC and lost its connection, so none counts: the connection's
//     state takes the address out of picks, and probes judge it.
//
// Any status the server sent counts, UNAVAILABLE included: it comes in
// headers, so something was received.
func reached(di gbalancer.DoneInfo) bool {
	switch {
	case !di.BytesSent:
		return false
	case di.BytesReceived:
		return true
	}
	return status.Code(di.Err) != codes.Unavailable
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
