// Package resolver follows a DNS name and publishes its address set on an
// events.Bus whenever the set changes.
//
// A Source resolves one name (its A and AAAA records, by default and for
// Type A and IP alike; AAAA records only; or SRV) when Run starts, then
// again whenever the answer's TTL runs out: the smallest TTL along the
// CNAME chain, clamped to [Config.MinTTL, Config.MaxTTL] and moved up to
// 10% earlier at random so that many sources do not query in lockstep, but
// never below MinTTL. After an answer (addresses, NXDOMAIN or NODATA) the
// next resolution is never sooner than MinTTL, also when a hold
// (NXDomainHold, HoldObsolete) ends before: the hold then ends at that
// resolution; retries after failures follow the backoff. ResolveNow brings
// the next resolution forward (when a connection failed, say), to at once
// but never sooner than MinTTL after the previous one. When the resolved
// set differs from the one published last, the Source publishes a Change
// on Topic(name) carrying the whole set (in canonical order, see Sort),
// what was added and removed, and a Version that is strictly increasing
// per name, also across Sources for that name in one process. A new Source
// whose bus already holds a Change for its name continues from it: it
// publishes nothing for the same set, and what it adds and removes is
// relative to that Change. State tells what a Source knows now, for an
// operator's status page: the last answer and its TTL, the failures in a
// row and the last error, when it asks next, the search candidate it
// follows.
//
// # Names
//
// Names are normalized once (NormalizeName: case folded, one trailing dot
// dropped): Change.Name, Failure.Name, Query.Name, Recovery.Name, every
// topic and every log line carry the normalized name, and queries are sent
// for it in lower case. An address's Hostname is the name that answered,
// normalized: the queried name (or the search candidate that answered) for
// A, AAAA and IP, the SRV target for SRV.
//
// A relative name is tried as the system resolver tries it, with a search
// list and ndots: those of Config.Search and Config.Ndots when set, else
// with Config.Servers empty those of resolv.conf (its search or domain
// line, "options ndots:n"), else none and 1. A name with a trailing dot is
// absolute and asked alone; a name with at least ndots dots is asked as it
// is first, then with each search domain appended; one with fewer dots
// with the search domains first. The first candidate that has records is
// followed from then on, until it stops existing (NXDOMAIN or NODATA) or
// the search list changes; then the candidates are tried again in order. A
// candidate that fails otherwise (timeout, SERVFAIL) ends the walk with
// that failure: a later candidate is never taken because an earlier one
// could not be asked.
//
// With Config.Servers empty the Source reads resolv.conf (WithResolvConf)
// as the system resolver does: its nameservers (port 53), search list and
// ndots (unless Config sets them), "options timeout:n" when Config.Timeout
// is 0, "attempts:n", the number of rounds over the servers (default one),
// and "rotate", which makes each query start at the next server in turn.
// The file is read again when a stat says it changed; a file that vanishes
// keeps what it said last, and one missing from the start means
// 127.0.0.1:53, with a logged warning. With Config.Servers set (on any
// port), resolv.conf is not read: one round, Config.Timeout, and only
// Config.Search and Config.Ndots for a relative name.
//
// # Failures
//
// A timeout, SERVFAIL, REFUSED, an unparsable reply or one that does not
// match the question keeps the last good set. The Source tries the next
// server; when none gives a usable reply (or a reply holds a CNAME error or
// a record without data) it publishes a Failure on FailureTopic(name), logs
// it, and retries with capped exponential backoff (Config.Backoff: 1s
// doubling to 30s, ±20% jitter, by default). NXDOMAIN and NODATA keep the
// last set for Config.NXDomainHold, then the empty set is published. The
// first resolution that publishes no Failure after some that did publishes
// a Recovery on RecoveryTopic(name) and logs it. Errors are inspectable
// with errors.Is against the sentinel errors of this package and with
// errors.As against *QueryError.
//
// A resolution can also fail in part, and then the rest of it applies: the
// Source publishes the set it got, keeps the last addresses of the parts
// that failed, and publishes a Failure with Partial set (and retries with
// the backoff, or at the TTL if that is sooner). The parts are the two
// families of a name of Type A or IP, and the families of each SRV target:
//
//   - A and IP: A and AAAA are asked at the same time (those Config.Family
//     asks for). NODATA or NXDOMAIN for one family next to addresses of the
//     other is no failure, and its negative TTL does not count; a family whose
//     lookup fails keeps its last addresses as long as it fails. Without
//     addresses in either family, the outcome is negative if both were, and
//     a failure otherwise (the whole last set is kept).
//   - SRV: each target resolves on its own. A target whose lookups are all
//     NXDOMAIN or NODATA, or a family of it whose lookup fails (a target
//     that gives no address and fails: all of its families), keeps its last
//     addresses for Config.NXDomainHold, then they are removed. When no
//     target gives an address and one fails, the whole resolution fails.
//
// # Answers
//
// Queries advertise EDNS0 with a 4096-byte UDP buffer. A server that
// answers FORMERR without an OPT record does not speak EDNS0: the query is
// sent again without it, and that server is asked without EDNS0 for 10
// minutes. A truncated UDP reply is asked again over TCP, and so is a
// truncated reply cut in the middle of a record (it does not unpack) and a
// reply longer than 4096 bytes. A reply must match the question (name,
// case-insensitively, type and class). Records whose owner is not on the
// CNAME chain are ignored; chains longer than 8 links or looping are
// errors, and so are replies with more than 1024 records (the EDNS0 OPT
// record included) and SRV answers that give more than 1024 addresses
// (records times their targets' addresses), ErrMalformed. A record of the
// type asked for that comes without its data (an A or AAAA record without
// an address, an SRV record without a target, also in the additional
// section or in a follow-up query, or a CNAME without a target) is
// ErrMalformed too: the last good set is kept.
//
// SRV answers give each target's port, weight and priority. A target's
// addresses of each family Config.Family asks for (both by default) come
// from the additional section, or, for a family it holds none of for the
// target, from a follow-up A or AAAA query, so partial glue gives the same
// set as none; there is no bound on such targets beyond the 1024 records a
// reply may hold. A family of a target that is NODATA or NXDOMAIN next to
// addresses of the other contributes nothing, its negative TTL neither; a
// target without addresses in any family is asked again at its negative
// TTL. Additional records of names that are not targets, or of a family
// not asked for, are ignored. A target of "." means the service
// is not available there and contributes no address; so does a record with
// port 0, which cannot be connected to (its target is not queried).
//
// An address a Source resolves never has an IPv6 zone: DNS cannot carry
// one. Addresses with zones (fe80::1%eth0) come only from a caller's own
// list, such as health.Checker.SetTargets.
//
// # Concurrency
//
// A Source is safe for concurrent use: Addresses, State and ResolveNow may
// be called from any goroutine at any time, before and during Run;
// ResolveNow never blocks. Run may only run once at a time; the goroutines it starts (for the A and AAAA queries of a name and
// the lookups of SRV targets, at most 8 targets at a time) end before the
// resolution that started them does, and none outlives Run.
package resolver
