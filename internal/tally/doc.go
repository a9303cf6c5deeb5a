// Package tally counts what vigil's parts publish on a bus, for the
// exporters of metrics (the Prometheus collector in metrics/, the
// OpenTelemetry reporter in vigilotel/): each of them holds a Tally, reads
// its counts when it is collected and maps them to its own instruments, so
// that both export the same figures, classified the same way.
//
// A Tally follows the upstreams it is told to (Watch, AddChecker): per
// upstream it counts probes by outcome, status changes by the status
// changed to, DNS queries by type and result, failed resolutions by reason,
// request outcomes by class and by picked target, and keeps the size of the
// last address set. Read returns those counts together with the state of
// each added checker (targets by status, its Stats), read at that moment.
//
// Durations are not counted here: a distribution is binned into buckets
// of each exporter's choosing, so a Tally hands every probe, query and
// request, classified, to its Observer, which records the duration in
// its own histograms.
//
// # Lifecycle and concurrency
//
// A Tally starts no goroutine: the bus delivers to it. Unwatch and Close
// unsubscribe and wait for deliveries in progress, so that once they
// return no count moves and the Observer is not called for that upstream.
// All methods are safe for concurrent use; the Observer's functions are
// called from the bus's deliveries, one at a time per topic.
package tally
