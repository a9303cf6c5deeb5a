package resolver

import (
	"strconv"

	"github.com/miekg/dns"
)

// Family chooses the address families a Source asks for: of the name itself
// for Type A and IP, and of each SRV target for Type SRV. The zero value,
// DualStack, asks for both.
type Family int

// The address family choices.
const (
	DualStack Family = iota // IPv4 and IPv6: A and AAAA queries; the zero value
	IPv4Only                // A queries only; AAAA glue is ignored
	IPv6Only                // AAAA queries only; A glue is ignored
)

// String returns "DualStack", "IPv4Only", "IPv6Only", or "Family(n)".
func (f Family) String() string {
	switch f {
	case DualStack:
		return "DualStack"
	case IPv4Only:
		return "IPv4Only"
	case IPv6Only:
		return "IPv6Only"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// families returns the families c asks for of the name itself: IPv6Only
// for Type AAAA, else c.Family. c is validated.
func (c Config) families() Family {
	if c.Type == AAAA {
		return IPv6Only
	}
	return c.Family
}

// qtypes returns the address query types f asks for, A first.
func (f Family) qtypes() []uint16 {
	switch f {
	case IPv4Only:
		return []uint16{dns.TypeA}
	case IPv6Only:
		return []uint16{dns.TypeAAAA}
	}
	return []uint16{dns.TypeA, dns.TypeAAAA}
}

// allows reports whether f asks for records of qtype (dns.TypeA or
// dns.TypeAAAA).
func (f Family) allows(qtype uint16) bool {
	switch f {
	case IPv4Only:
		return qtype == dns.TypeA
	case IPv6Only:
		return qtype == dns.TypeAAAA
	}
	return true
}

// part names the addresses of one family of one host name: of the queried
// name for Type IP, of one SRV target for Type SRV. A Source keeps the last
// published addresses of a part whose lookup failed.
type part struct {
	host string // as in Address.Hostname
	v6   bool   // AAAA rather than A
}

// partOf returns the part a belongs to. An IPv4-mapped IPv6 address came
// from an AAAA record.
func partOf(a Address) part { return part{host: a.Hostname, v6: !a.IP.Is4()} }

// partFor returns the part of host's addresses of qtype.
func partFor(host string, qtype uint16) part { return part{host: host, v6: qtype == dns.TypeAAAA} }
