package resolver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkCheckAndWalk measures unpacking, validating and walking a reply
// of a two-link CNAME chain ending in 32 A records.
func BenchmarkCheckAndWalk(b *testing.B) {
	q := new(dns.Msg)
	q.SetQuestion("web.test.", dns.TypeA)
	r := new(dns.Msg)
	r.SetReply(q)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
	}
	r.Answer = append(r.Answer,
		&dns.CNAME{Hdr: hdr("web.test.", dns.TypeCNAME), Target: "a.test."},
		&dns.CNAME{Hdr: hdr("a.test.", dns.TypeCNAME), Target: "b.test."})
	for i := range 32 {
		r.Answer = append(r.Answer, &dns.A{Hdr: hdr("b.test.", dns.TypeA), A: net.IPv4(10, 0, 0, byte(i))})
	}
	wire, err := r.Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		if err := checkReply(q.Question[0], m); err != nil {
			b.Fatal(err)
		}
		recs, _, err := newChainWalk("web.test.", dns.TypeA).walk(m.Answer)
		if err != nil || len(recs) != 32 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}
