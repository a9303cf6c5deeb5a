package resolver

import (
	"time"

	"github.com/vigil-go/vigil/events"
)

// Query is published on QueryTopic(Name) for every DNS query a Source sends
// to a server: the first question (for each search candidate tried, and
// for both families of a name of Type A or IP), CNAME follow-ups and the
// A/AAAA queries for SRV targets, one per server and round tried. A UDP
// query asked again over TCP after a truncated reply, or again without
// EDNS0 after a FORMERR, is one Query. Queries cut short because the
// Source's Run ended are not published. Queries of one resolution may run
// at the same time; each is published when it ends.
type Query struct {
	Name     string // the upstream: Config.Name normalized (NormalizeName), like Change.Name
	QName    string // the name asked (fully qualified, lower case): Name, a search candidate, a CNAME target or an SRV target
	Type     string // "A", "AAAA" or "SRV"
	Server   string // "host:port"
	Duration time.Duration
	// Err is nil when the server gave a usable NOERROR reply (which may
	// still hold no records of the type asked: NODATA). Otherwise it
	// matches one of the sentinel errors of this package (ErrTimeout,
	// ErrNetwork, ErrServerFailure, ErrRefused, ErrNXDomain, ErrMalformed,
	// ErrMismatch, ErrRcode) with errors.Is.
	Err error
}

// QueryTopic returns the bus topic on which the Source of name publishes a
// Query for every query it sends. Its subscribers receive every query, in
// order.
func QueryTopic(name string) events.Topic[Query] {
	return events.NewTopic[Query]("resolver.query/" + NormalizeName(name))
}

// queryObserver returns the function the lookup of a Source calls after
// each query, or nil when there is no bus to publish on.
func queryObserver(bus *events.Bus, name string) func(Query) {
	if bus == nil {
		return nil
	}
	topic := QueryTopic(name)
	return func(q Query) {
		q.Name = name
		events.Publish(bus, topic, q)
	}
}
