// Package subset makes each client of a large fleet use and probe only k of
// an upstream's M addresses: gRFC A68's random subsetting with rendezvous
// hashing.
//
// Every address gets a score, XXH64 of its canonical string ("ip:port/
// hostname") seeded with XXH64 of the client's id; the client keeps the k
// addresses with the lowest scores. A score depends on the id and the
// address alone, never on the other addresses, so:
//
//   - the subset is a pure function of the id and the address set: the same
//     id gets the same subset in every process and after every restart;
//   - an address coming or going changes at most one entry of any client's
//     subset (a departing member is replaced by the next address in the
//     client's order; a newcomer displaces at most the last member), which
//     is what keeps connection and health state churn low while DNS moves;
//   - different ids give independent orders, so each address is in about
//     N·k/M of N clients' subsets.
//
// The spread of clients per address is that of independent random choices:
// with N clients, an address's count is Binomial(N, k/M), whatever the
// hash, and the fullest of M addresses typically carries about
// 1 + 2.5·sqrt((1-k/M)/(N·k/M)) times the mean (about 1.24 for N = 1,000,
// k = 10, M = 100). It improves as N·k/M grows; docs/fleet.md has the
// measurements.
//
// # With a checker
//
// Subsetting plugs into health.WithTargetFilter: the checker then holds,
// probes and balances over the subset only, and an address leaving the
// subset is remembered as any removed address is (R2, R3): when it comes
// back into the subset it has its status and counters back. From the root
// package:
//
//	s, err := subset.New("client-17", 10)
//	...
//	u, err := vigil.New(cfg, vigil.WithHealthOptions(s.HealthOption()))
//
// Weight and Priority are not considered: an SRV set with priority levels
// is subset across its levels. Subset is immutable and safe for concurrent
// use.
package subset
