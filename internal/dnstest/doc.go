// Package dnstest runs an in-process authoritative DNS server on loopback,
// for tests and demos: records can be set and replaced at any time, names
// can be made to fail with a response code (for every type, or for one) or
// to answer late, and a Misbehavior can make the server answer wrongly
// (wrong ID, wrong question, garbage, silence, slow or empty answers, extra
// records, truncation, replies cut in the middle of a record or longer than
// the client asked for, FORMERR to EDNS0, TCP streams closed or cut short),
// for every query or for one question. A Server made by New does not listen:
// Reply answers in process, for clients on the fake clock of
// testing/synctest.
//
// A Server is safe for concurrent use.
package dnstest
