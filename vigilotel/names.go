package vigilotel

import "go.opentelemetry.io/otel/attribute"

// The names of vigil's own instruments. The conventions' instruments
// (http.client.request.duration, rpc.client.call.duration,
// dns.lookup.duration) are made by the semconv packages, with the names,
// units, descriptions and bucket boundaries of the conventions.
// docs/metrics.md lists them all.
const (
	targetCount         = "vigil.target.count"
	targetStatusChanges = "vigil.target.status_changes"
	targetEjected       = "vigil.target.ejected"
	targetEjections     = "vigil.target.ejections"
	targetRemembered    = "vigil.target.remembered"
	targetRequests      = "vigil.target.requests"
	probeDuration       = "vigil.probe.duration"
	probeActive         = "vigil.probe.active"
	probeDropped        = "vigil.probe.dropped"
	requests            = "vigil.requests"
	dnsFailures         = "vigil.dns.failures"
	dnsAddressCount     = "vigil.dns.address.count"
	dnsChanges          = "vigil.dns.changes"
	dnsVersion          = "vigil.dns.version"
)

// The attributes of vigil's own. Where a convention has one (server.*,
// network.peer.address, error.type, http.response.status_code), it is
// used instead.
const (
	// UpstreamKey is the upstream's name, normalized: the name given to
	// its resolver, checker and balancer.
	UpstreamKey = attribute.Key("vigil.upstream.name")
	// TargetStatusKey is a target's status: "healthy" or "unhealthy".
	TargetStatusKey = attribute.Key("vigil.target.status")
	// ProbeOutcomeKey is how a probe ended: "success", "http_failure",
	// "tcp_failure", "timeout" or "ignored".
	ProbeOutcomeKey = attribute.Key("vigil.probe.outcome")
	// RequestOutcomeKey is the class of a request's outcome: "1xx" to
	// "5xx", "conn_failure", "timeout", "failure", "success", "ignore"
	// or "other".
	RequestOutcomeKey = attribute.Key("vigil.request.outcome")
	// RecordTypeKey is the type of a DNS query: "A", "AAAA" or "SRV".
	RecordTypeKey = attribute.Key("vigil.dns.record_type")
	// ChangeResultKey says what the checker did with an address set:
	// "applied", or "ignored" as stale.
	ChangeResultKey = attribute.Key("vigil.dns.change.result")
)
