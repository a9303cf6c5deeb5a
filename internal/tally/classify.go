package tally

import (
	"errors"
	"strconv"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Buckets are the bucket bounds, in seconds, that vigil's own duration
// histograms use (probes, and DNS queries in Prometheus): from half a
// millisecond (loopback) to five seconds (beyond any default timeout).
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// ProbeOutcomes are the outcomes of health.ProbeOutcome, in its order: the
// probe counts of an upstream hold each of them from the start.
var ProbeOutcomes = []health.ProbeOutcome{
	health.ProbeIgnored, health.ProbeSuccess, health.ProbeHTTPFailure,
	health.ProbeTCPFailure, health.ProbeTimeout,
}

// Probe is one active probe whose outcome the checker applied.
type Probe struct {
	Upstream   string
	Outcome    string // health.ProbeOutcome's String: "success", "http_failure", ...
	Failed     bool   // the outcome is a failure: http_failure, tcp_failure or timeout
	StatusCode int    // the HTTP status; 0 when there was none
	Duration   time.Duration
}

func probeOf(name string, r health.ProbeResult) Probe {
	return Probe{
		Upstream:   name,
		Outcome:    r.Outcome.String(),
		Failed:     r.Outcome == health.ProbeHTTPFailure || r.Outcome == health.ProbeTCPFailure || r.Outcome == health.ProbeTimeout,
		StatusCode: r.StatusCode,
		Duration:   r.Duration,
	}
}

// Query is one DNS query sent.
type Query struct {
	Upstream string
	QName    string // the name asked, fully qualified
	Type     string // "A", "AAAA" or "SRV"
	Result   string // "ok", or the error's class (ErrorClass)
	Duration time.Duration
}

// QueryKey is what queries are counted by.
type QueryKey struct {
	Type   string
	Result string
}

func queryOf(name string, q resolver.Query) Query {
	return Query{Upstream: name, QName: q.QName, Type: q.Type, Result: ErrorClass(q.Err), Duration: q.Duration}
}

// Request is one request whose outcome the balancer reported.
type Request struct {
	Upstream   string
	Target     resolver.Address // the picked target
	Outcome    string           // RequestOutcome's class: "2xx", "conn_failure", ...
	StatusCode int              // the HTTP status of a response; 0 when there was none

	// What the conventions' request metrics need beyond the outcome.
	// balancer.Result does not carry it yet: until it does, these stay
	// zero and the request has no duration to record.
	Protocol string        // "http" or "grpc"; "" when unknown
	Method   string        // the HTTP method, or the gRPC full method name; "" when unknown
	Status   string        // the gRPC status code's name; "" for HTTP and when unknown
	Duration time.Duration // from the pick to the outcome; 0 when not measured
}

// requestOf classifies a Result. The fields of Request that Result lacks
// stay zero (see Request).
func requestOf(name string, r balancer.Result) Request {
	req := Request{Upstream: name, Target: r.Address, Outcome: RequestOutcome(r.Outcome)}
	if r.Outcome >= 100 && r.Outcome <= 999 {
		req.StatusCode = int(r.Outcome)
	}
	return req
}

// dnsClasses maps the resolver's sentinel errors to classes, in the order
// they are tried: an error joining several (every server failed) takes the
// first class that matches.
var dnsClasses = []struct {
	err   error
	class string
}{
	{resolver.ErrNXDomain, "nxdomain"},
	{resolver.ErrNoData, "nodata"},
	{resolver.ErrTimeout, "timeout"},
	{resolver.ErrServerFailure, "servfail"},
	{resolver.ErrRefused, "refused"},
	{resolver.ErrNetwork, "network"},
	{resolver.ErrMismatch, "mismatch"},
	{resolver.ErrMalformed, "malformed"},
	{resolver.ErrCNAMEChain, "cname_chain"},
	{resolver.ErrRcode, "rcode"},
}

// ErrorClass returns the class of a DNS error: "ok" for nil, a class from
// dnsClasses, or "other".
func ErrorClass(err error) string {
	if err == nil {
		return "ok"
	}
	for _, c := range dnsClasses {
		if errors.Is(err, c.err) {
			return c.class
		}
	}
	return "other"
}

// RequestOutcome returns the class of a balancer outcome: "success",
// "conn_failure", "timeout", "ignore", "failure", or the HTTP status class
// ("1xx" ... "5xx"; "other" for a code outside 100-599).
func RequestOutcome(o balancer.Outcome) string {
	switch o {
	case balancer.Success:
		return "success"
	case balancer.ConnFailure:
		return "conn_failure"
	case balancer.Timeout:
		return "timeout"
	case balancer.Ignore:
		return "ignore"
	case balancer.Failure:
		return "failure"
	}
	if o >= 100 && o <= 599 {
		return strconv.Itoa(int(o)/100) + "xx"
	}
	return "other"
}
