package dnstest

import (
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerAnswers(t *testing.T) {
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetA("www.test", 30, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	s.SetCNAME("alias.test", "www.test", 10)
	for _, tt := range []struct {
		name, net string
		rcode     int
		answers   int
	}{
		{"alias.test.", "udp", dns.RcodeSuccess, 2},
		{"www.test.", "tcp", dns.RcodeSuccess, 1},
		{"missing.test.", "udp", dns.RcodeNameError, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tt.name, dns.TypeA)
		r, _, err := (&dns.Client{Net: tt.net}).Exchange(m, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != tt.rcode || len(r.Answer) != tt.answers {
			t.Errorf("%s over %s: rcode %d, %d answers; want %d, %d", tt.name, tt.net, r.Rcode, len(r.Answer), tt.rcode, tt.answers)
		}
	}
	if s.Queries() != 3 || s.TCPQueries() != 1 || s.QueriesFor("alias.test", dns.TypeA) != 1 {
		t.Errorf("counters: %d queries, %d over TCP", s.Queries(), s.TCPQueries())
	}
}
