package dnstest

import (
	"fmt"
	"net"
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

// exchangeRaw sends m over UDP to addr and returns the bytes of the reply,
// read into a buffer of size bytes.
func exchangeRaw(t *testing.T, addr string, m *dns.Msg, size int) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestEDNSAndSizeMisbehaviors(t *testing.T) {
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var many []string
	for i := range 300 { // about 4.8 KB of A records, uncompressed
		many = append(many, fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	if err := s.SetA("big.test", 30, many...); err != nil {
		t.Fatal(err)
	}
	query := func(edns bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("big.test.", dns.TypeA)
		if edns {
			m.SetEdns0(4096, false)
		}
		return m
	}

	t.Run("NoEDNS", func(t *testing.T) {
		s.SetMisbehavior(NoEDNS)
		defer s.SetMisbehavior(nil)
		r := new(dns.Msg)
		if err := r.Unpack(exchangeRaw(t, s.Addr(), query(true), 65535)); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeFormatError || r.IsEdns0() != nil {
			t.Fatalf("with EDNS0: rcode %s, OPT %v; want FORMERR without OPT", dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
		b := exchangeRaw(t, s.Addr(), query(false), 65535)
		if err := r.Unpack(b); err != nil || r.Rcode != dns.RcodeSuccess || !r.Truncated || len(b) > dns.MinMsgSize {
			t.Fatalf("without EDNS0: %v, rcode %s, TC %v, %d bytes; want a truncated NOERROR within 512 bytes",
				err, dns.RcodeToString[r.Rcode], r.Truncated, len(b))
		}
	})
	t.Run("TruncateMidRecord", func(t *testing.T) {
		s.SetMisbehavior(TruncateMidRecord(100))
		defer s.SetMisbehavior(nil)
		b := exchangeRaw(t, s.Addr(), query(true), 65535)
		r := new(dns.Msg)
		if err := r.Unpack(b); err == nil || !r.Truncated || len(b) != 100 {
			t.Fatalf("unpack = %v, TC %v, %d bytes; want an error, TC, 100 bytes", err, r.Truncated, len(b))
		}
	})
	t.Run("IgnoreUDPSize", func(t *testing.T) {
		s.SetMisbehavior(IgnoreUDPSize)
		defer s.SetMisbehavior(nil)
		if b := exchangeRaw(t, s.Addr(), query(true), 65535); len(b) <= 4096 {
			t.Fatalf("%d bytes, want the whole reply, over 4096", len(b))
		}
		r, _, err := (&dns.Client{Net: "tcp"}).Exchange(query(true), s.Addr())
		if err != nil || len(r.Answer) != len(many) {
			t.Fatalf("over TCP: %v, %v", r, err)
		}
	})
}

func TestPerQuestionBehaviour(t *testing.T) {
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetA("web.test", 30, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAAAA("web.test", 30, "fd00::1"); err != nil {
		t.Fatal(err)
	}
	ask := func(qtype uint16, timeout time.Duration) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion("web.test.", qtype)
		r, _, err := (&dns.Client{Timeout: timeout}).Exchange(m, s.Addr())
		return r, err
	}

	s.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeServerFailure)
	if r, err := ask(dns.TypeAAAA, time.Second); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("AAAA: %v, %v; want SERVFAIL", r, err)
	}
	if r, err := ask(dns.TypeA, time.Second); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("A: %v, %v; want the record", r, err)
	}
	s.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeSuccess)
	if r, err := ask(dns.TypeAAAA, time.Second); err != nil || len(r.Answer) != 1 {
		t.Fatalf("AAAA after the reset: %v, %v", r, err)
	}

	s.SetMisbehavior(ForQuestion("web.test", dns.TypeA, Drop))
	if _, err := ask(dns.TypeA, 100*time.Millisecond); err == nil {
		t.Fatal("A answered, want it dropped")
	}
	if r, err := ask(dns.TypeAAAA, time.Second); err != nil || len(r.Answer) != 1 {
		t.Fatalf("AAAA: %v, %v; want it answered", r, err)
	}
	s.SetMisbehavior(nil)

	s.SetDelay("web.test", 300*time.Millisecond)
	if _, err := ask(dns.TypeA, 100*time.Millisecond); err == nil {
		t.Fatal("answered within 100ms, want the 300ms delay")
	}
	if _, err := ask(dns.TypeA, 2*time.Second); err != nil {
		t.Fatalf("delayed answer: %v", err)
	}
}

// TestReplyWithoutNetwork: a server made by New answers Reply as the
// network server does over TCP (records, CNAME chains, NXDOMAIN and NODATA
// with an SOA, response codes), counts the queries, and closes without
// error.
func TestReplyWithoutNetwork(t *testing.T) {
	s := New()
	if err := s.SetA("www.test", 30, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	s.SetCNAME("alias.test", "www.test", 10)
	s.SetRcode("broken.test", dns.RcodeServerFailure)
	for _, tt := range []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
		soa     bool
	}{
		{"alias.test.", dns.TypeA, dns.RcodeSuccess, 2, false},
		{"WWW.test.", dns.TypeA, dns.RcodeSuccess, 1, false},
		{"www.test.", dns.TypeAAAA, dns.RcodeSuccess, 0, true}, // NODATA
		{"missing.test.", dns.TypeA, dns.RcodeNameError, 0, true},
		{"broken.test.", dns.TypeA, dns.RcodeServerFailure, 0, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tt.name, tt.qtype)
		r := s.Reply(m)
		if r.Id != m.Id || !r.Response || r.Rcode != tt.rcode || len(r.Answer) != tt.answers || (len(r.Ns) == 1) != tt.soa {
			t.Errorf("%s %s: %v; want rcode %s, %d answers, SOA %v", tt.name, dns.TypeToString[tt.qtype], r,
				dns.RcodeToString[tt.rcode], tt.answers, tt.soa)
		}
	}
	if s.Queries() != 5 || s.QueriesFor("www.test", dns.TypeA) != 1 || s.Addr() != "" {
		t.Errorf("%d queries, %d for www.test A, address %q", s.Queries(), s.QueriesFor("www.test", dns.TypeA), s.Addr())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
