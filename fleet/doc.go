// Package fleet shares active health verdicts among the clients of a fleet
// through NATS JetStream key-value buckets, so that each address is probed
// by r clients instead of all N, and every client holds the same verdict.
//
// Without it, N clients probing M backends every interval send N×M probes
// per interval (1,000 clients × 100 backends at 1s: 100,000 probes a
// second on the backends), and each reaches its own verdicts, which can
// diverge. With it, each address is probed by Config.Probers members
// (r = 2 by default) whatever N, and the others apply their verdicts.
// Passive verdicts stay local: they describe each client's own traffic.
//
//	f, err := fleet.New(fleet.Config{URL: "nats://nats.internal:4222", Member: podName})
//	...
//	err = f.Attach(upstream) // a *vigil.Upstream; or AttachChecker(checker, bus)
//	...
//	go f.Run(ctx)
//
// # Members and probers
//
// Each member registers in the bucket Bucket+"-members", once per
// attached upstream, and refreshes its registration every TTL/3; it
// deletes it when Run ends. A registration not refreshed within its TTL
// is forgotten. For each address, the live members are ranked by
// rendezvous hashing (XXH64 of the member id seeded with XXH64 of the
// address): the ranking is the same in every member, and a member coming
// or going moves no other member in it.
//
// The r highest-ranked members probe the address. A member counts as one
// of its probers while its latest verdict on it is fresh (see below), and
// for a grace period (its healthy probe interval and a quarter) from when
// it became one; a member ranked below probes the address only while
// fewer than r members above it count. So:
//
//   - a member that leaves (Run ends, Detach) is replaced at once by the
//     next one in the ranking;
//   - a member that stops writing without leaving (crashed, partitioned
//     from NATS, no longer holding the address) is replaced once its
//     verdict is late, within a quarter of an interval after the write it
//     missed;
//   - a member that joins takes over the addresses it ranks first for at
//     once, and the member it displaces stops.
//
// A member applies the probe decisions with health.Checker.SetProbeFilter
// (an address it does not know yet, newly resolved, is probed if it ranks
// among the r first), so its checker probes only the addresses it probes
// for the fleet.
//
// # Verdicts
//
// After each probe of an address it probes for the fleet, a member writes
// its active verdict (healthy or unhealthy, the probe's reason) under
// <upstream>.<address>.<member> in the bucket Bucket+"-verdicts". The
// value says for how long it counts: the writer's probe interval for the
// address's status and a quarter more (at least 25ms). Writing after every
// probe is the prober's heartbeat.
//
// An address's shared verdict is Unhealthy if any fresh verdict of a live
// member says so, else Healthy if one does; without a fresh verdict there
// is none. Any prober seeing a failure is enough, because a false
// unhealthy costs a little capacity for an interval while a false healthy
// sends traffic to a broken backend. A member applies the shared verdict,
// with health.Checker.SetActive, to every address it does not probe
// itself, with the prober's reason and name ("HTTP 500 (fleet member
// pod-7)"). A prober holds its own verdict, but takes up another prober's
// failure as it appears, so that every member holds the address unhealthy
// at once; its own probes may make it healthy again (probers that disagree
// do not flap: it takes that failure up once). Passive verdicts are never
// shared.
//
// # Versions
//
// A verdict carries a version (Epoch, Seq): Epoch is when the writer's Run
// started, Seq grows with each write. Readers keep, per key, the highest
// version they have seen and ignore a value that is not newer, so a
// delayed, replayed or hand-made older value never replaces a newer one.
// Writers write by compare-and-set on the key's revision: when the key was
// changed by someone else (only another instance with the same member id
// writes it), the writer reads it; if its Epoch is newer, the writer is the
// stale instance and Run stops with ErrMemberConflict, otherwise it
// overwrites it. The connection keeps no reconnect buffer, so nothing
// written while disconnected is sent late.
//
// # Format
//
// Both buckets carry FormatVersion in their metadata, and every value in
// its "v" field. A bucket of a newer format, or without that metadata, is
// refused with ErrIncompatible; a value of a newer format is ignored and
// logged. Values are JSON, readable with the nats CLI.
//
// # Failures
//
// While verdicts cannot be shared (not connected yet, connection lost,
// JetStream failing) every attached checker probes all its targets, as
// without a fleet, and Run logs why and keeps trying. The verdicts the
// checkers hold stay; when sharing resumes, the members read the buckets
// again, take up their probes and write again, and the verdicts converge.
// An unreachable server is no error from New unless WithWait asks New to
// wait for it.
//
// # Lifecycle and concurrency
//
// New starts nothing. Run connects (or uses Config.Conn), shares until its
// context ends, then deletes this member's registrations, restores local
// probing and closes what it opened; no goroutine it started outlives it.
// Attach and Detach work before and during Run. All methods are safe for
// concurrent use. Logging goes to WithLogger's logger, silent by default;
// every line says why.
package fleet
