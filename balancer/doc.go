// Package balancer picks a healthy address of an upstream for each request,
// following a health.Checker.
//
// A Balancer reads the checker's healthy set through an immutable snapshot
// published with an atomic pointer. Pick loads the snapshot, compares its
// generation with the checker's Generation and picks from it; it takes no lock
// and allocates nothing. When the generation moved (a target was added or
// removed, changed status, Weight or Priority), the first Pick to notice
// rebuilds the snapshot and concurrent picks wait for it: the previous
// snapshot may hold a target that has just turned unhealthy, and no pick
// returns it once the checker says so. (Only slow start's timed refreshes
// let picks use the previous snapshot meanwhile.) There is no goroutine: a
// Balancer starts nothing and needs no Close.
//
// # Configuration
//
// A Config says how to pick: Policy, PanicThreshold and
// OverprovisioningFactor (priority levels), SlowStart and EWMADecay; each
// field's zero value is its default. NewWithConfig validates it and returns
// a *ConfigError (matching ErrInvalidConfig) for a value out of range: an
// unknown policy, a panic threshold outside [0, 1], a negative window. New,
// which takes options only and returns no error, gives a balancer whose
// every pick fails with that *ConfigError (and Err returns it): a bad
// setting is never replaced by another, and never panics. Options set
// Config fields one by one (WithPolicy, WithPanicThreshold, ...) or all at
// once (WithConfig), and carry the rare knobs: WithClock, WithBus,
// WithLogger.
//
// # Policies
//
// A policy (Config.Policy) picks among the candidates of one priority
// level (see Priority levels for which level takes a pick). Each is a small
// type of its own, built for every snapshot from the one it replaces and
// the level's candidates:
//
//   - RoundRobin (the default) rotates over the candidates in canonical order
//     (resolver.Compare). When the candidates' SRV weights differ (weight 0
//     counts as 1) it walks the smooth weighted schedule instead: over a cycle
//     of Σweight/gcd picks each target gets exactly its share, its picks
//     spread evenly rather than in bursts. WeightedRoundRobin is another name
//     for it. The rotation is sharded so that picks scale with cores: each P
//     (GOMAXPROCS, at most 64, counted at New) mostly keeps a shard of its
//     own, held in a sync.Pool, and each shard advances its own position on a
//     cache line no other shard writes. The rotation is exact per shard: any n
//     consecutive picks of one shard among n candidates pick each once, and
//     any cycle-long run of one shard's weighted picks holds exactly the
//     weights' shares. Overall, while the candidates do not change, each
//     target's count differs from its exact share of the picks by at most one
//     pick per shard (the shard's unfinished cycle). Serial picks from one
//     goroutine stay on one shard, and so rotate exactly, as long as its P
//     keeps its pool entry: a garbage collection may move it to another
//     shard, and under the race detector (which makes sync.Pool drop a
//     random quarter of what is put back) many picks do. Shard i starts i
//     entries into the rotation, so that the shards' first picks differ.
//   - Random draws each pick from the calling thread's generator of
//     math/rand/v2, in proportion to SRV weights: no shared write, so it
//     scales across cores; shares are exact in expectation and differ by
//     O(√picks).
//   - LeastRequest (power of two choices) draws two candidates at random
//     and picks the one with fewer requests in flight.
//   - PeakEWMA (power of two choices, as Finagle's and linkerd's) draws two
//     candidates and picks the one with the lower cost: the peak EWMA of its
//     response times times its requests in flight plus one. A response
//     slower than the current estimate raises it to that latency at once; a
//     faster one pulls it down with the weight 1-exp(-Δt/τ), Δt the time
//     since the last update; time without responses decays it as if they
//     were instant, so that a target avoided for being slow is tried again.
//     τ is Config.EWMADecay (10s by default). A failed, timed-out or
//     abandoned request's latency is only a lower bound: it can raise the
//     estimate, never lower it, so fast failures do not attract traffic. A
//     target not measured yet costs 0 while nothing is in flight to it and
//     more than any measured one while something is, so it gets one request
//     at a time until its first response.
//   - ConsistentHash maps a caller's key (PickKey) onto a hash ring with 100
//     points per target, placed by the target's identity (IP, port, hostname)
//     alone. When a target leaves, only the keys it held move; keys of the
//     remaining targets stay where they were, and a target that returns gets
//     its keys back. A rebuild derives the ring from the previous one in time
//     linear in its size. Pick without a key picks at random.
//
// LeastRequest, PeakEWMA and ConsistentHash ignore SRV weights. Requests in
// flight and latencies are counted between PickCall and Call.Done (an
// Upstream's Transport does this); Pick alone counts nothing, so with Pick
// LeastRequest and PeakEWMA are plain random.
//
// A target's load (its requests in flight and PeakEWMA's estimate) belongs
// to the target for as long as the checker has it, not to a snapshot: a
// target that leaves the candidates for a while (it turned unhealthy, or
// its level takes no picks) and comes back still has its requests in flight
// counted and its estimate, so a slow target does not come back looking
// idle. The load is dropped when the checker drops the target.
//
// # Priority levels
//
// Targets of one SRV priority form a level; a lower value is a better level.
// A level without a healthy target never gets a pick while another level has
// one.
//
// By default the levels are strictly ordered, as RFC 2782 asks of SRV
// clients: every pick goes to the healthy targets of the best level that has
// a healthy target.
//
// Config.PanicThreshold f or Config.OverprovisioningFactor x (or
// WithPanicThreshold, WithOverprovisioningFactor) turns on Envoy's priority
// levels instead (arch_overview/upstream/load_balancing: priority levels,
// panic threshold), with x = 1.4 unless set:
//
//   - A level's health is min(100, ⌊100·x·healthy/targets⌋) percent: with
//     1.4, a level with at least 72% of its targets healthy counts as fully
//     healthy.
//   - The normalized total availability (NTA) is min(100, Σ health).
//   - Each level's share of the picks (its priority load) is, best level
//     first, min(what is left of 100, health) when Σ health ≥ 100, so worse
//     levels take what better ones lack; below 100 the levels share the
//     picks in proportion to health/NTA, in whole percents rounded by
//     largest remainder, as Envoy's documented examples show ({7, 91} → 7%
//     and 93%).
//   - With a panic threshold f and NTA below 100, a level whose healthy
//     fraction is below f (at exactly f it is not) is in panic: its share
//     goes to all its targets, healthy or not, rather than overload its few
//     healthy ones. With NTA at 100 no level panics.
//   - When every level is in panic, the shares follow the levels' numbers of
//     targets instead, among the levels that have a healthy target; when no
//     target is healthy anywhere (every level at 0), among all levels, so
//     picks go to every target. Envoy would give a share to a panicking
//     level without a healthy target even while another level has one; this
//     balancer does not: such a level's targets all failed their checks,
//     and the rule above holds without exception.
//   - Without a panic threshold, no level panics; with no healthy target at
//     all, a pick fails with ErrNoHealthy.
//
// Picks choose the level first, by its share (RoundRobin walks a smooth
// schedule of the shares, sharded as its rotation is, so over 100 picks of
// one shard each level gets exactly its percent; other policies draw at
// random, ConsistentHash by a hash of the key), then a candidate of that
// level by the policy.
//
// A worked example: priority 10 has 5 targets, priority 20 has 6, and the
// balancer is built WithPanicThreshold(0.5).
//
//	healthy  healthy  health    NTA   priority 10          priority 20
//	of 10    of 20    10, 20          share, picks among   share, picks among
//	5 of 5   6 of 6   100, 100  100   100%, healthy          0%
//	4 of 5   6 of 6   100, 100  100   100%, healthy          0%  (4·1.4/5 = 112%)
//	3 of 5   6 of 6    84, 100  100    84%, healthy         16%, healthy
//	2 of 5   6 of 6    56, 100  100    56%, healthy         44%, healthy
//	1 of 5   3 of 6    28,  70   98    29%, all 5 (panic)   71%, healthy (50% is not below 0.5)
//	1 of 5   2 of 6    28,  46   74    45%, all 5 (panic)   55%, all 6 (panic): by 5:6 targets
//	0 of 5   1 of 6     0,  23   23     0%                 100%, all 6 (panic)
//	0 of 5   0 of 6     0,   0    0    45%, all 5 (panic)   55%, all 6 (panic): every level at 0
//
// In the fifth row the shares are 28/98 and 70/98 of the picks, 28.6% and
// 71.4%, rounded to 29% and 71%. Without the panic threshold (only
// WithOverprovisioningFactor) the sixth row would be 38% and 62% (28/74 and
// 46/74) among the healthy targets, and the last a pick error; with neither
// option every pick goes to priority 10's healthy targets while it has one,
// else to priority 20's.
//
// # Slow start
//
// Config.SlowStart, a window (off by default), lets a target that was added, or
// turned healthy, ramp up: its share grows linearly from 10% to 100% of a full
// share over the window (applied by every policy but ConsistentHash, and not
// in a level in panic). The balancer notices the arrival when it rebuilds its
// snapshot, which happens at the first pick after the change; targets present
// at the first pick count as established, and a target that turned unhealthy
// and healthy again between two picks keeps its ramp. While a target ramps,
// picks read the clock, the snapshot is rebuilt 20 times per window, and a
// pick the ramp refuses is drawn again at random (so round robin is no longer
// an exact rotation meanwhile). WithClock injects the clock.
//
// # Feedback
//
// PickCall returns a Call whose Done reports the request's Outcome to the
// checker's passive checks (ReportHTTPStatus, ReportSuccess,
// ReportTCPFailure, ReportTimeout), ends its count in flight and, under
// PeakEWMA, folds its latency into the target's estimate. DoneRetryAfter
// reports a 429 or 503 that advised a Retry-After (ReportRetryAfter).
// PickCallExcept picks past addresses a caller already tried or cannot
// use. The HTTP transport that does all this for each request is the root
// package's (vigil.Upstream.Transport); the gRPC picker is vigilgrpc's.
//
// # Errors
//
// A pick that finds no candidate fails with a *NoHealthyError (matching
// ErrNoHealthy) that says why: the upstream, how many targets the checker
// has and the latest reasons (health.Target.Reason) of the first few, for
// example
//
//	balancer: no healthy target for upstream "auth.internal": 3 targets, all unhealthy:
//	HTTP 404 (127.0.0.1:8080), connection refused (127.0.0.2:8080), timeout (127.0.0.3:8080)
//
// on one line, bounded in length (MaxReasons reasons, then "and N more").
// It is built with the snapshot, so that a failing pick costs no more than
// a working one.
//
// # Status
//
// Loads copies out, per target, its requests in flight, its picks so far
// (Calls picked for it: its share of the traffic) and PeakEWMA's latency
// estimate, for an operator's status page. It reads counters the picks
// write and takes only the lock of a snapshot's rebuild.
//
// # Concurrency
//
// All methods of Balancer and Call are safe for concurrent use.
package balancer
