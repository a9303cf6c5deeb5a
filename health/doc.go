// Package health checks the health of an upstream's addresses while its
// address set keeps changing.
//
// A Checker follows resolver.Topic(Config.Name) on an events.Bus (or takes
// target sets from SetTargets) and reconciles its targets by set difference:
// an address present before and after a change keeps its status, counters and
// probe schedule; a new address is probed at once; a removed address stops
// being probed at once and its state moves into a bounded memory (an LRU), from
// which it is taken back when the address returns. A target is identified by
// its IP, port and hostname; Weight and Priority are attributes.
//
// # Checks
//
// Active probes (HTTP, HTTPS or TCP connect) and passive reports (ReportSuccess,
// ReportHTTPStatus, ReportTCPFailure, ReportTimeout) feed one state machine per
// target with the threshold semantics of lua-resty-healthcheck: a success
// resets the failure counters and a failure resets the success counter; a
// healthy target turns unhealthy when any failure counter reaches its
// threshold, an unhealthy one turns healthy when its successes reach theirs.
// Probe outcomes are judged with the Active thresholds, reports with the
// Passive ones. An HTTP status in neither the healthy nor the unhealthy list
// is ignored: it changes no counter.
//
// Every status transition is published as a StatusChange on
// StatusTopic(Config.Name) and logged. Membership and status changes also
// advance Generation and close the channel returned by Changed, which is how
// a load balancer learns cheaply that Healthy has a new answer.
//
// # Scheduling
//
// One scheduler goroutine keeps a min-heap of next-probe times and hands due
// targets to a bounded pool of probe workers (WithMaxProbes). At most one probe
// per address is in flight, also when the address left and returned while a
// probe of it hangs (it is probed again once that probe ends), so a flapping
// address cannot use up the workers. A new target's first probe is due at once; later
// probes are due one interval (of the target's current status, ±5% jitter)
// after the previous probe started.
//
// # Concurrency
//
// All methods of Checker are safe for concurrent use. Status, Targets,
// Healthy, SetTargets, Update and the Report methods work at any time, before
// Run too, and never wait for a probe in flight: the checker's lock is never
// held across network I/O. Events are published outside that lock, in the
// order the transitions happened. Run starts the scheduler, the probe workers
// and the bus subscription; it returns after all of them have stopped.
package health
