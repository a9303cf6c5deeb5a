package metrics

import (
	"errors"
	"strconv"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/resolver"
)

// dnsClasses maps the resolver's sentinel errors to label values, in the
// order they are tried: an error joining several (every server failed)
// takes the first class that matches.
var dnsClasses = []struct {
	err   error
	label string
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

// errorClass returns the label value of a DNS error: "ok" for nil, a class
// from dnsClasses, or "other".
func errorClass(err error) string {
	if err == nil {
		return "ok"
	}
	for _, c := range dnsClasses {
		if errors.Is(err, c.err) {
			return c.label
		}
	}
	return "other"
}

// requestOutcome returns the label value of a balancer outcome: "success",
// "conn_failure", "timeout", "ignore", or the HTTP status class ("2xx" ...
// "5xx"; "other" for a code outside 100-599).
func requestOutcome(o balancer.Outcome) string {
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
