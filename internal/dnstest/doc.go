// Package dnstest runs an in-process authoritative DNS server on loopback,
// for tests and demos: records can be set and replaced at any time, names
// can be made to fail with a response code, and a Misbehavior can make the
// server answer wrongly (wrong ID, wrong question, garbage, silence, slow
// or empty answers, extra records, truncation, TCP streams closed or cut
// short).
//
// A Server is safe for concurrent use.
package dnstest
