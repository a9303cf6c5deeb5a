// Package balancer picks a healthy address of an upstream for each request,
// following a health.Checker.
//
// A Balancer reads the checker's healthy set through an immutable snapshot
// published with an atomic pointer. Pick loads the snapshot, compares its
// generation with the checker's Generation and picks from it; it takes no lock
// and allocates nothing. When the generation moved (a target was added or
// removed, changed status, Weight or Priority), the first Pick to notice
// rebuilds the snapshot; while it does, concurrent picks keep using the
// previous one. There is no goroutine: a Balancer starts nothing and needs no
// Close.
//
// # Policies
//
// Every policy picks only among the healthy targets of the best (lowest) SRV
// priority that has a healthy member; targets of worse priorities receive
// traffic only when no better one has a healthy member.
//
//   - RoundRobin (the default) spreads picks evenly over the healthy targets.
//     Each pick draws its index from the per-thread generator of math/rand/v2
//     instead of advancing one shared counter, so picks on different cores
//     share no cache line; shares are even in expectation and differ by
//     O(√picks).
//   - WeightedRoundRobin gives each target a share proportional to its SRV
//     weight (weight 0 counts as 1), following a smooth schedule: each target's
//     picks are spread evenly over a cycle of Σweights picks instead of coming
//     in bursts. It advances one shared counter, so it is exact but pays for
//     that counter's cache line on many cores.
//   - LeastRequest (power of two choices) draws two targets at random and
//     picks the one with fewer requests in flight. Requests in flight are
//     counted between PickCall and Call.Done (Transport does this); Pick
//     alone counts nothing, so with Pick the policy is plain random.
//   - ConsistentHash maps a caller's key (PickKey) onto a hash ring with 100
//     points per target, placed by the target's identity (IP, port, hostname)
//     alone. When a target leaves, only the keys it held move; keys of the
//     remaining targets stay where they were, and a target that returns gets
//     its keys back. A rebuild derives the ring from the previous one in time
//     linear in its size. Pick without a key picks at random.
//
// LeastRequest and ConsistentHash ignore SRV weights.
//
// # Panic threshold
//
// WithPanicThreshold(f) (off by default) behaves like Envoy's panic
// threshold: the balancer uses the best priority level whose healthy fraction
// is at least f; when no level reaches f, it picks among all targets of the
// best priority level, healthy or not, rather than overload the few healthy
// ones. A level at exactly f is not in panic.
//
// # Slow start
//
// WithSlowStart(window) (off by default) lets a target that was added, or
// turned healthy, ramp up: its share grows linearly from 10% to 100% of a full
// share over the window (applied by the RoundRobin, WeightedRoundRobin and
// LeastRequest policies, not by ConsistentHash nor in panic). The balancer
// notices the arrival when it rebuilds its snapshot, which happens at the
// first pick after the change; targets present at the first pick count as
// established, and a target that turned unhealthy and healthy again between
// two picks keeps its ramp. While a target ramps, picks read the clock and
// the snapshot is rebuilt 20 times per window. WithClock injects the clock.
//
// # Feedback
//
// PickCall returns a Call whose Done reports the request's Outcome to the
// checker's passive checks (ReportHTTPStatus, ReportSuccess,
// ReportTCPFailure, ReportTimeout) and ends its count in flight.
//
// # HTTP
//
// Transport is an http.RoundTripper that sends each request to a picked
// address while keeping the URL's host as Host header and TLS server name,
// and reports every outcome. See Transport for its connection pools.
//
// # Concurrency
//
// All methods of Balancer, Call and Transport are safe for concurrent use.
package balancer
