package dnstest

import (
	"testing"
	"time"

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

func TestMisbehaviors(t *testing.T) {
	extra, err := dns.NewRR("evil.test. 0 IN A 10.6.6.6")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		net     string
		misb    Misbehavior
		cut     int
		wantErr bool
		answers int
	}{
		{name: "close TCP", net: "tcp", misb: CloseTCP, wantErr: true},
		{name: "close TCP, UDP truncated", net: "udp", misb: CloseTCP, answers: 0},
		{name: "cut TCP stream", net: "tcp", cut: 20, wantErr: true},
		{name: "cut short over UDP", net: "udp", misb: CutShort(20), wantErr: true},
		{name: "empty", net: "udp", misb: Empty, answers: 0},
		{name: "slow", net: "udp", misb: Slow(300 * time.Millisecond), wantErr: true},
		{name: "add", net: "udp", misb: Add(extra), answers: 2},
		{name: "answer", net: "udp", misb: Answer(extra), answers: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start("")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.SetA("www.test", 30, "10.0.0.1"); err != nil {
				t.Fatal(err)
			}
			s.SetMisbehavior(tt.misb)
			s.CutTCP(tt.cut)
			m := new(dns.Msg)
			m.SetQuestion("www.test.", dns.TypeA)
			r, _, err := (&dns.Client{Net: tt.net, Timeout: 100 * time.Millisecond}).Exchange(m, s.Addr())
			if tt.wantErr {
				if err == nil {
					t.Fatalf("reply %v, want an error", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != tt.answers {
				t.Fatalf("rcode %d, %d answers; want NOERROR, %d", r.Rcode, len(r.Answer), tt.answers)
			}
		})
	}
}
