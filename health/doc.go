// Package health checks the health of an upstream's addresses while its
// address set keeps changing.
//
// A Checker follows resolver.Topic(Config.Name) on an events.Bus (or takes
// target sets from SetTargets) and reconciles its targets by set difference:
// an address present before and after a change keeps its status, counters and
// probe schedule; a new address is probed at once; a removed address stops
// being probed at once and its state moves into a bounded memory (an LRU), from
// which it is taken back when the address returns. A target is identified by
// its resolver.Key: IP, port and hostname; Weight and Priority are attributes.
//
// # Memory that outlives a checker
//
// A Memory given to checkers with WithMemory is shared: a name's state then
// outlives the checker that held it. When a checker's Run returns it leaves
// the state of every live target in the Memory, and the next checker of
// the same name given that Memory starts from it as the addresses arrive:
// restored before any probe, then probed at once. Entries are kept by
// (name, address), so checkers of other names sharing the Memory never take
// them. A Memory holds at most its size of departed targets, forgetting
// the least recently departed first, and none longer than MaxMemoryAge.
//
// # Two verdicts
//
// Every target has two verdicts, each with its own counters: the active one,
// from probes (HTTP, HTTPS, TCP connect, or a custom Prober), and the passive
// one, from outcomes of real traffic (ReportSuccess, ReportHTTPStatus,
// ReportTCPFailure, ReportTimeout, ReportRetryAfter). Its Status is Unhealthy
// when either verdict is, so steady successful traffic can never hide a
// failing health check, and probes never reset the passive counters. Within
// one verdict the threshold semantics are lua-resty-healthcheck's: a success
// resets the failure counters and a failure resets the success counter; a
// healthy verdict turns unhealthy when any failure counter reaches its
// threshold, an unhealthy one turns healthy when its successes reach theirs.
// An HTTP status in neither list is ignored.
//
// A passive verdict of unhealthy is an ejection (Envoy's outlier detection,
// Finagle's failure accrual): it lasts Passive.Ejection.Base times the
// number of recent ejections, capped at Max, less up to 10% at random. It
// ends at its deadline, or early when passive successes reach their
// threshold, or, for the first of recent ejections only and when unhealthy
// targets are probed, once Active.Healthy.Successes probes started during
// it have passed in a row. Then the target is on probation, where one
// passive failure ejects it again, for longer, and that repeated ejection
// runs to its deadline: a health check that passes while the traffic fails
// cannot let the traffic back in once per probe interval. An ejection cut
// short still counts in full towards the next one's length. A 429 or 503 with Retry-After ejects for the advised time
// (ReportRetryAfter), ended by that deadline alone. Passive.Outlier adds
// upstream-wide outlier detection (success rate and failure percentage,
// after gRFC A50), and caps the share of targets passive verdicts may eject.
// Verdicts, counters and ejections are state of the target: they move into
// memory with it and come back with it.
//
// Every change of the status or of a verdict is published as a StatusChange
// with its Reason on StatusTopic(Config.Name) and logged at Info. Membership
// and status changes also advance Generation and close the channel returned
// by Changed, which is how a load balancer learns cheaply that Healthy has a
// new answer.
//
// # Scheduling
//
// Run keeps a min-heap of next-probe times and starts each due probe on a
// goroutine of its own, at most WithMaxProbes at once: an idle checker costs
// one goroutine, whatever WithMaxProbes says. HTTP(S) probes speak HTTP/1.1
// on a connection each target keeps between probes (at most
// WithMaxIdleConns in all): nothing reads it while it idles, so it costs a
// file descriptor and no goroutine, and it is closed when its target goes,
// when the probe settings change and when Run ends. TLS sessions are
// resumed from a bounded cache. At most one probe per address is in flight, also
// when the address left and returned while a probe of it hangs (it is
// probed again once that probe ends), so a flapping address cannot pile up
// probes. A new target's first probe is due at once; later probes are due
// one interval (of the target's current status, ±5% jitter) after the
// previous probe started. Run also ends ejections at their deadlines and
// evaluates outliers at Outlier.Interval.
//
// # Concurrency
//
// All methods of Checker and Memory are safe for concurrent use. Status, Targets,
// Healthy, SetTargets, Update and the Report methods work at any time, before
// Run too, and never wait for a probe in flight: the checker's lock is never
// held across network I/O. Events are published outside that lock, in the
// order the changes happened. Run returns after every goroutine it started
// has stopped.
package health
