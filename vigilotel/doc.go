// Package vigilotel reports vigil's metrics through OpenTelemetry
// (go.opentelemetry.io/otel/metric), to a MeterProvider you give.
//
// It follows a bus as the Prometheus collector (package metrics) does —
// an Upstream's (Upstream.Bus), a Client's (Client.Bus) or a vigilgrpc
// Builder's (Builder.Bus) — and counts the same events the same way: both
// read the counts of one internal tally, so that Prometheus and
// OpenTelemetry show the same figures.
//
//	m, err := vigilotel.New(u.Bus(), meterProvider)
//	if err != nil { ... }
//	defer m.Close()
//	m.AddChecker(u.Checker()) // watches the upstream and reads its checker
//
// # Instruments
//
// Where a semantic convention applies, its instrument is used, with its
// name, unit, attributes and bucket boundaries (semantic conventions
// 1.43.0):
//
//   - http.client.request.duration: requests of a Client or an Upstream's
//     Transport, one per try sent to a picked address;
//   - rpc.client.call.duration: RPCs of a vigilgrpc ClientConn;
//   - dns.lookup.duration: every DNS query the resolver sends.
//
// The request durations are recorded from balancer.Result, which does not
// carry a duration yet: until it does, these two histograms stay empty and
// vigil.requests counts the requests.
//
// Everything else is named vigil.*: targets by status and their status
// changes, ejections, probes (vigil.probe.duration counts them and
// measures them), requests by outcome and by target, failed resolutions,
// addresses and address sets. docs/metrics.md has the table of names,
// instruments, units and attributes.
//
// The instruments are reported under the scope ScopeName. An application
// that also wraps its http.Client with otelhttp gets a second
// http.client.request.duration, one per request rather than per try, under
// otelhttp's scope; a View of the SDK can drop either.
//
// # Lifecycle and concurrency
//
// New makes the instruments and registers one callback for the observable
// ones; Metrics starts no goroutine. The bus's deliveries record the
// histograms as they come; the callback reads the counts and the added
// checkers when the MeterProvider collects. Unwatch and Close unsubscribe
// and wait for deliveries in progress; Close also unregisters the
// callback. All methods are safe for concurrent use.
package vigilotel
