// Package resolver follows a DNS name and publishes its address set on an
// events.Bus whenever the set changes.
//
// A Source resolves one name (A, AAAA or SRV) when Run starts, then again
// whenever the answer's TTL runs out: the smallest TTL along the CNAME chain,
// clamped to [Config.MinTTL, Config.MaxTTL] and moved up to 10% earlier at
// random so that many sources do not query in lockstep, but never below
// MinTTL. After an answer (addresses, NXDOMAIN or NODATA) the next
// resolution is never sooner than MinTTL, also when a hold (NXDomainHold,
// HoldObsolete) ends before: the hold then ends at that resolution; retries
// after failures follow the backoff. When the resolved set differs from the
// one published last, the Source publishes a Change on
// Topic(name) carrying the whole set (in canonical order, see Sort), what was
// added and removed, and a Version that is strictly increasing per name,
// also across Sources for that name in one process. A new Source whose bus
// already holds a Change for its name continues from it: it publishes
// nothing for the same set, and what it adds and removes is relative to
// that Change.
//
// # Failures
//
// A timeout, SERVFAIL, REFUSED, an unparsable reply or one that does not
// match the question keeps the last good set. The Source tries the next
// server; when none gives a usable reply (or a reply holds a CNAME error or
// a record without data) it publishes a Failure on FailureTopic(name), logs
// it, and retries with capped exponential backoff (1s doubling to 30s, ±20%
// jitter). NXDOMAIN and
// NODATA keep the last set for Config.NXDomainHold, then the empty set is
// published. Likewise an SRV target whose A and AAAA lookups are both
// NXDOMAIN or NODATA keeps its last addresses for Config.NXDomainHold, then
// they are removed. Errors are inspectable with errors.Is against the sentinel
// errors of this package and with errors.As against *QueryError.
//
// # Answers
//
// Queries advertise EDNS0 with a 4096-byte UDP buffer; a truncated UDP reply
// is retried over TCP. A reply must match the question (name,
// case-insensitively, type and class). Records whose owner is not on the
// CNAME chain are ignored; chains longer than 8 links or looping are errors,
// and so are replies with more than 1024 records (the EDNS0 OPT record
// included) and SRV answers that give more than 1024 addresses (records
// times their targets' addresses), ErrMalformed. A record of the type asked
// for that comes without its data (an A or AAAA record without an address,
// an SRV record without a target, also in the additional section or in a
// follow-up query, or a CNAME without a target) is ErrMalformed too: the
// last good set is kept.
//
// SRV answers give each target's port, weight and priority. A target's
// IPv4 and IPv6 addresses come from the additional section, or, for a
// family it holds none of for the target, from a follow-up A or AAAA query,
// so partial glue gives the same set as none; there is no bound on such
// targets beyond the 1024 records a reply may hold. Additional records of
// names that are not targets are ignored. A target of "." means the service
// is not available there and contributes no address; so does a record with
// port 0, which cannot be connected to (its target is not queried).
//
// # Concurrency
//
// A Source is safe for concurrent use: Addresses may be called from any
// goroutine at any time, before and during Run. Run may only run once at a
// time; it starts no goroutine that outlives it.
package resolver
