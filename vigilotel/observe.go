package vigilotel

import (
	"context"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/tally"
	"github.com/vigil-go/vigil/resolver"
)

// conventionBuckets are the bucket boundaries, in seconds, that the
// conventions advise for the durations of HTTP requests, RPCs and DNS
// lookups.
var conventionBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// observe is the callback of the observable instruments: it reports what
// the Tally holds now.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	for _, u := range m.t.Read() {
		m.observeUpstream(o, u)
	}
	return nil
}

func (m *Metrics) observeUpstream(o metric.Observer, u tally.Upstream) {
	up := UpstreamKey.String(u.Name)
	with := func(kv ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributes(append([]attribute.KeyValue{up}, kv...)...)
	}
	for to, n := range u.Transitions {
		o.ObserveInt64(m.statusChanges, int64(n), with(TargetStatusKey.String(to)))
	}
	for outcome, n := range u.Requests {
		o.ObserveInt64(m.requests, int64(n), with(RequestOutcomeKey.String(outcome)))
	}
	if m.perTarget {
		for k, n := range u.Picks {
			o.ObserveInt64(m.targetRequests, int64(n), with(targetAttributes(k)...))
		}
	}
	for reason, n := range u.Failures {
		o.ObserveInt64(m.failures, int64(n), with(semconv.ErrorTypeKey.String(reason)))
	}
	if u.Resolved {
		o.ObserveInt64(m.addresses, int64(u.Addresses), with())
	}
	c := u.Checker
	if c == nil {
		return
	}
	o.ObserveInt64(m.targets, int64(c.Healthy), with(TargetStatusKey.String(health.Healthy.String())))
	o.ObserveInt64(m.targets, int64(c.Unhealthy), with(TargetStatusKey.String(health.Unhealthy.String())))
	o.ObserveInt64(m.ejected, int64(c.Stats.Ejected), with())
	o.ObserveInt64(m.ejections, int64(c.Stats.Ejections), with())
	o.ObserveInt64(m.remembered, int64(c.Stats.Remembered), with())
	o.ObserveInt64(m.activeProbes, int64(c.Stats.InFlight), with())
	o.ObserveInt64(m.droppedProbes, int64(c.Stats.ProbesDropped), with())
	o.ObserveInt64(m.changes, int64(c.Stats.ChangesApplied), with(ChangeResultKey.String("applied")))
	o.ObserveInt64(m.changes, int64(c.Stats.ChangesIgnored), with(ChangeResultKey.String("ignored")))
	o.ObserveInt64(m.version, int64(c.Stats.Version), with())
}

// targetAttributes describes a target as the conventions describe a
// server: server.address is its hostname (its IP when it has none),
// server.port its port, network.peer.address its IP.
func targetAttributes(k resolver.Key) []attribute.KeyValue {
	host := k.Hostname
	if host == "" {
		host = k.IP.String()
	}
	return []attribute.KeyValue{
		semconv.ServerAddressKey.String(host),
		semconv.ServerPortKey.Int(int(k.Port)),
		semconv.NetworkPeerAddressKey.String(k.IP.String()),
	}
}

// probe records a probe's duration.
func (m *Metrics) probe(p tally.Probe) {
	kv := []attribute.KeyValue{UpstreamKey.String(p.Upstream), ProbeOutcomeKey.String(p.Outcome)}
	if p.StatusCode != 0 {
		kv = append(kv, semconv.HTTPResponseStatusCodeKey.Int(p.StatusCode))
	}
	if p.Failed {
		kv = append(kv, semconv.ErrorTypeKey.String(p.Outcome))
	}
	m.probeDuration.Record(context.Background(), p.Duration.Seconds(), metric.WithAttributes(kv...))
}

// query records a DNS query's duration as a DNS lookup.
func (m *Metrics) query(q tally.Query) {
	kv := []attribute.KeyValue{
		semconv.DNSQuestionNameKey.String(q.QName),
		UpstreamKey.String(q.Upstream),
		RecordTypeKey.String(q.Type),
	}
	if q.Result != "ok" {
		kv = append(kv, semconv.ErrorTypeKey.String(q.Result))
	}
	m.lookupDuration.Record(context.Background(), q.Duration.Seconds(), metric.WithAttributes(kv...))
}

// request records a request's duration, as an RPC's for gRPC and as an
// HTTP request's otherwise. A request without a duration records nothing.
func (m *Metrics) request(r tally.Request) {
	if r.Duration <= 0 {
		return
	}
	if r.Protocol == "grpc" {
		m.rpcDuration.Record(context.Background(), r.Duration.Seconds(), metric.WithAttributes(rpcAttributes(r)...))
		return
	}
	m.httpDuration.Record(context.Background(), r.Duration.Seconds(), metric.WithAttributes(httpAttributes(r)...))
}

// httpAttributes are the attributes of http.client.request.duration:
// server.address is the upstream's name (the host of the request's URL),
// server.port the picked target's port.
func httpAttributes(r tally.Request) []attribute.KeyValue {
	kv := []attribute.KeyValue{
		semconv.ServerAddressKey.String(r.Upstream),
		semconv.ServerPortKey.Int(int(r.Target.Port)),
	}
	if r.Method != "" {
		kv = append(kv, httpMethod(r.Method))
	}
	if r.StatusCode != 0 {
		kv = append(kv, semconv.HTTPResponseStatusCodeKey.Int(r.StatusCode))
	}
	if e := httpErrorType(r); e != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(e))
	}
	return kv
}

// httpMethod returns the http.request.method of method: itself when the
// convention knows it, else _OTHER.
func httpMethod(method string) attribute.KeyValue {
	switch method {
	case "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY":
		return semconv.HTTPRequestMethodKey.String(method)
	}
	return semconv.HTTPRequestMethodOther
}

// httpErrorType returns the error.type of a request, "" when it succeeded:
// the status code of a 4xx or 5xx response; "conn_failure", "timeout" or
// "failure" when there was no response; _OTHER for a request whose
// outcome was ignored (the caller gave up, its body failed to read, an
// error that is none of the above).
func httpErrorType(r tally.Request) string {
	if r.StatusCode >= 400 {
		return strconv.Itoa(r.StatusCode)
	}
	return outcomeErrorType(r.Outcome)
}

// outcomeErrorType returns the error.type of an outcome class without a
// status of the protocol's: "" for the ones that are no error.
func outcomeErrorType(outcome string) string {
	switch outcome {
	case "conn_failure", "timeout", "failure":
		return outcome
	case "ignore":
		return semconv.ErrorTypeOther.Value.AsString()
	}
	return ""
}

// rpcAttributes are the attributes of rpc.client.call.duration:
// server.address is the upstream's name (the channel's target host),
// server.port the picked target's port.
func rpcAttributes(r tally.Request) []attribute.KeyValue {
	kv := []attribute.KeyValue{
		semconv.RPCSystemNameGRPC,
		semconv.ServerAddressKey.String(r.Upstream),
		semconv.ServerPortKey.Int(int(r.Target.Port)),
	}
	if r.Method != "" {
		kv = append(kv, semconv.RPCMethodKey.String(strings.TrimPrefix(r.Method, "/")))
	}
	errType := outcomeErrorType(r.Outcome)
	if r.Status != "" {
		kv = append(kv, semconv.RPCResponseStatusCodeKey.String(r.Status))
		errType = ""
		if r.Status != "OK" { // gRPC's convention: every other code is an error
			errType = r.Status
		}
	}
	if errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(errType))
	}
	return kv
}
