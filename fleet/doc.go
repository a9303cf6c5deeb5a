// Package fleet shares active health verdicts among the clients of a fleet
// through a NATS JetStream key-value bucket, so that each address is probed
// by r clients instead of all N, and every client holds the fleet's
// verdict.
//
// Without it, N clients probing M backends every interval send N×M probes
// per interval (1,000 clients × 100 backends at 1s: 100,000 probes a
// second on the backends), and each reaches its own verdicts, which can
// diverge. With it, each address is probed by Config.Probers members
// (r = 3 by default) whatever N, and the others apply their verdicts.
// Passive verdicts stay local: they describe each client's own traffic.
//
//	f, err := fleet.New(fleet.Config{URL: "nats://nats.internal:4222", Member: podName, Zone: zone})
//	...
//	err = f.Attach(upstream) // a *vigil.Upstream; or AttachChecker(checker, bus)
//	...
//	go f.Run(ctx)
//
// # Values
//
// Every member writes, under <upstream>.<address>.<member> in the bucket
// Bucket+"-verdicts-v2", its value on each address it probes for the
// fleet: a claim when it takes the address up, then after each probe its
// active verdict (healthy or unhealthy, the probe's reason). Each value
// says for how long it counts (two probe intervals; a claim also its delay
// before its first probe) and carries a TTL after which the server removes
// it. A member watches only the keys of the addresses its checker holds
// (all of them, or its subset), so what it receives per interval is r
// values per address it holds, whatever the size of the fleet. There is no
// membership list: members know of each other through the addresses they
// share.
//
// # Probers
//
// For each address, the members whose value on it counts, and the member
// deciding, are ranked by rendezvous score (XXH64 of the member id seeded
// with XXH64 of the address); the best of each Zone are taken first, then
// the best of the rest. A member probes the address when it is among the
// r taken. So:
//
//   - when a prober leaves (Run ends, Detach: its values are deleted) the
//     best member holding the address takes its place at once;
//   - when a prober stops writing without leaving (crashed, cut off from
//     NATS) its value goes late after two intervals and the same happens;
//   - a member that joins takes the places it is best for, displacing at
//     most one prober per address;
//   - members that would take up a free place wait a delay that shrinks
//     with their score, so the best goes first and the others see its
//     claim: a free place is taken once, not by every member;
//   - a member taking an address up probes first in the middle of the
//     widest gap between the other probers' probes: probers started
//     together do not probe together.
//
// A member applies these decisions with health.Checker.SetProbeFilter,
// so its checker probes only the addresses it probes for the fleet; a
// probe still in flight on an address taken away is dropped.
//
// # Agreement
//
// The fleet's verdict on an address is Unhealthy when at least
// Config.Quorum of its probers' verdicts say so (a majority by default:
// 2 of 3), else Healthy when one says so; without either, none, and each
// member keeps what it holds. So one member with a broken path to one
// backend (a zone partition, a local firewall, a full conntrack table)
// cannot take it out of the others' traffic: its own checker holds the
// backend unhealthy (its own traffic avoids it), the fleet does not. A
// prober whose verdicts are in the minority several times in a row is
// reported: Stats.Disagreements and Stats.Outvoted, a log line with the
// address, and Roles. QuorumAny makes any prober's failure the fleet's:
// faster, for small fleets that reach every backend the same way.
//
// A member applies the fleet's verdict, with health.Checker.SetActive, to
// every address it does not probe, naming the prober ("HTTP 500 (fleet
// member pod-7)"). A prober holds its own verdict, and votes only once its
// own probes agree with it: a verdict it applied from the fleet never
// comes back as its vote.
//
// # Trust
//
// Anyone allowed to write to the bucket can write any value. Whatever it
// says, a value counts at most for the reader's own bounds: a verdict for
// two of the reader's longest probe intervals, a claim for a healthy
// interval, a probe timeout and a verdict's window; a value the bucket
// removed (deleted, purged, expired) no longer counts. An epoch claiming
// an instance started more than a minute in the future is not believed.
// docs/fleet.md lists the subjects each member must be allowed to publish
// and subscribe to, and a server configuration; a member that the server
// refuses says so (ErrDenied in Stats.NotSharing, a log line naming the
// subject) and probes every address locally.
//
// # Versions
//
// Each key has one writer: the member whose id ends it. A value carries
// its writer's Epoch (when its Run started). Writers write by
// compare-and-set on the key's revision: when the key was changed by
// someone else, the writer reads it; its own value (an answer lost, a
// previous session) or one not of its member is overwritten; an older
// instance's is overwritten and counted (Stats.Conflicts); a newer
// instance's makes this one stop with ErrMemberConflict. Readers ignore a
// value of an older instance while a newer one's counts. The connection
// keeps no reconnect buffer, so nothing written while disconnected is sent
// late.
//
// # Format
//
// The bucket's name ends with FormatVersion, its metadata holds it, and so
// does every value's "v" field: members of two formats never read each
// other's values. A bucket of that name in another format is refused with
// ErrIncompatible; a value of a newer format is ignored and logged.
// Values are JSON, readable with the nats CLI.
//
// # Failures
//
// While verdicts cannot be shared (not connected yet, connection lost,
// JetStream failing, refused) every attached checker probes all its
// targets, as without a fleet, and Run logs why and keeps trying. The
// verdicts the checkers hold stay; when sharing resumes, the members read
// the bucket again, take up their probes and write again. A write that
// times out is tried again; three in a row end the session. An
// unreachable server is no error from New unless WithWait asks New to wait
// for it.
//
// # Engine
//
// The verdict logic reaches NATS JetStream through a small interface
// (compare-and-set put with a TTL, get, remove, watch keys), so another
// engine could be added without touching it.
//
// # Lifecycle and concurrency
//
// New starts nothing. Run connects (or uses Config.Conn), shares until its
// context ends, then deletes this member's values, restores local probing
// and closes what it opened; no goroutine it started outlives it. Attach
// and Detach work before and during Run. All methods are safe for
// concurrent use; Stats, Probing and Roles read snapshots and never wait
// for the network. Logging goes to WithLogger's logger, silent by default;
// every line says why.
package fleet
