package resolver

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// outcome is what a hostile answer must lead to.
type outcome int

const (
	kept     outcome = iota // a Failure is published and the last good set stays
	accepted                // no Failure; the set becomes want (bad records ignored)
	held                    // NODATA: the last set is held for NXDomainHold, then emptied
	clamped                 // the refresh is due at the TTL clamped to [MinTTL, MaxTTL]
)

// hostileHeapBound is how much the live heap may grow across one hostile
// case: far above what the resolver keeps (at most maxRecords records),
// far below what an unbounded answer would pin.
const hostileHeapBound = 32 << 20

// TestHostileDNS points a Source at a server that misbehaves on purpose,
// after one good answer (10.0.0.1). During the misbehaviour the server's
// records say 10.0.0.2; once it behaves again the Source must follow.
func TestHostileDNS(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "10.2." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		}
		return out
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name    string
		breaks  func(t *testing.T, s *dnstest.Server)
		outcome outcome
		err     error         // the sentinel of the Failures due (kept, held)
		want    []string      // the set after breaking (accepted)
		records bool          // breaks sets the name's records itself
		ttl     time.Duration // the TTL the answers carry (clamped)
		minTTL  time.Duration
		maxTTL  time.Duration
	}{
		{
			name:    "wrong message ID",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.WrongID) },
			outcome: kept, err: ErrTimeout,
		},
		{
			name:    "wrong message ID, then the right reply",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.WrongIDFirst) },
			outcome: accepted, want: []string{"10.0.0.2"},
		},
		{
			name:    "reply for another question",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.WrongQuestion) },
			outcome: kept, err: ErrMismatch,
		},
		{
			name:    "garbage bytes",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.Garbage) },
			outcome: kept, err: ErrMalformed,
		},
		{
			name:    "UDP reply cut short",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.CutShort(20)) },
			outcome: kept, err: ErrMalformed,
		},
		{
			name:    "truncated UDP reply, TCP answers",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.TruncateUDP) },
			outcome: accepted, want: []string{"10.0.0.2"},
		},
		{
			name:    "truncated UDP reply, TCP closed without a reply",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.CloseTCP) },
			outcome: kept, err: ErrNetwork,
		},
		{
			name: "truncated UDP reply, TCP stream cut mid-message",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(dnstest.TruncateUDP)
				s.CutTCP(20)
			},
			outcome: kept, err: ErrNetwork,
		},
		{
			name: "truncated UDP reply, TCP message incomplete",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
					if w.LocalAddr().Network() == "tcp" {
						return dnstest.CutShort(20)(w, req, reply)
					}
					return dnstest.TruncateUDP(w, req, reply)
				})
			},
			outcome: kept, err: ErrMalformed,
		},
		{
			name:    "2500 records", // near the 64 KiB TCP limit: the server does not compress
			breaks:  func(t *testing.T, s *dnstest.Server) { must(t, s.SetA("web.test", 0, many(2500)...)) },
			records: true, outcome: kept, err: ErrMalformed,
		},
		{
			name:    "1000 records, within the bound",
			breaks:  func(t *testing.T, s *dnstest.Server) { must(t, s.SetA("web.test", 0, many(1000)...)) },
			records: true, outcome: accepted, want: many(1000),
		},
		{
			name: "CNAME loop",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(dnstest.Answer(rr("web.test. 0 IN CNAME loop.test."), rr("loop.test. 0 IN CNAME web.test.")))
			},
			outcome: kept, err: ErrCNAMEChain,
		},
		{
			name: "CNAME chain longer than the bound",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				var chain []dns.RR
				prev := "web.test."
				for i := range maxChain + 1 {
					next := "c" + strconv.Itoa(i) + ".test."
					chain = append(chain, rr(prev+" 0 IN CNAME "+next))
					prev = next
				}
				s.SetMisbehavior(dnstest.Answer(append(chain, rr(prev+" 0 IN A 10.0.0.3"))...))
			},
			outcome: kept, err: ErrCNAMEChain,
		},
		{
			name: "records of unrelated owners, classes and types",
			breaks: func(t *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(dnstest.Add(
					rr("evil.test. 0 IN A 10.6.6.1"),
					rr("web.test.evil.test. 0 IN A 10.6.6.2"),
					rr("web.test. 0 CH A 10.6.6.3"),
					rr("web.test. 0 IN AAAA fd00::666"),
					rr("other.test. 0 IN CNAME evil.test."),
					rr("evil.test. 0 IN CNAME web.test."),
				))
				must(t, s.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
			},
			records: true, outcome: accepted, want: []string{"10.0.0.1", "10.0.0.2"},
		},
		{
			name:    "TTL 0 raised to MinTTL",
			breaks:  func(t *testing.T, s *dnstest.Server) { must(t, s.SetA("web.test", 0, "10.0.0.1")) },
			records: true, outcome: clamped, ttl: 0, minTTL: 100 * time.Millisecond, maxTTL: time.Hour,
		},
		{
			name:    "TTL 2^31-1 lowered to MaxTTL",
			breaks:  func(t *testing.T, s *dnstest.Server) { must(t, s.SetA("web.test", 1<<31-1, "10.0.0.1")) },
			records: true, outcome: clamped, ttl: (1<<31 - 1) * time.Second, minTTL: time.Millisecond, maxTTL: 100 * time.Millisecond,
		},
		{
			name: "A record without data",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(dnstest.Answer(&dns.A{Hdr: dns.RR_Header{Name: "web.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}}))
			},
			outcome: kept, err: ErrMalformed,
		},
		{
			name: "CNAME record without data",
			breaks: func(_ *testing.T, s *dnstest.Server) {
				s.SetMisbehavior(dnstest.Answer(&dns.CNAME{Hdr: dns.RR_Header{Name: "web.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}}))
			},
			outcome: kept, err: ErrMalformed,
		},
		{
			name:    "SERVFAIL",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeServerFailure) },
			outcome: kept, err: ErrServerFailure,
		},
		{
			name:    "REFUSED",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeRefused) },
			outcome: kept, err: ErrRefused,
		},
		{
			name:    "NOTIMP",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeNotImplemented) },
			outcome: kept, err: ErrRcode,
		},
		{
			name:    "FORMERR",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeFormatError) },
			outcome: kept, err: ErrMalformed,
		},
		{
			name:    "no answer at all (empty NOERROR)",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.Empty) },
			outcome: held, err: ErrNoData,
		},
		{
			name:    "silence",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.Drop) },
			outcome: kept, err: ErrTimeout,
		},
		{
			name:    "answers slower than the timeout",
			breaks:  func(_ *testing.T, s *dnstest.Server) { s.SetMisbehavior(dnstest.Slow(250 * time.Millisecond)) },
			outcome: kept, err: ErrTimeout,
		},
	}
	// The cases that time out wait 100ms for a reply; the others wait so
	// long that load cannot make them time out instead.
	const (
		short = 100 * time.Millisecond
		long  = 5 * time.Second
		hold  = 300 * time.Millisecond
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			heap0 := liveHeap()
			srv := startDNS(t)
			must(t, srv.SetA("web.test", 0, "10.0.0.1"))
			bus := newBus(t)
			changes := record(t, bus, Topic("web.test"))
			failures := record(t, bus, FailureTopic("web.test"))
			// A records only: the answers are made for A queries (an
			// AAAA record added to every reply would answer an AAAA one).
			cfg := Config{
				Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()},
				MinTTL: 20 * time.Millisecond, Timeout: long, NXDomainHold: hold,
			}
			if tt.err == ErrTimeout {
				cfg.Timeout = short
			}
			if tt.outcome == clamped {
				cfg.MinTTL, cfg.MaxTTL = tt.minTTL, tt.maxTTL
			}
			s := mustSource(t, cfg, bus)
			start(t, s)
			good := waitChanges(t, changes, 1, patience)[0].Addresses

			// Every state the server passes through is either the good one
			// or the broken one: misbehaviours are installed first, then
			// the record changes that only a good reply may carry.
			tt.breaks(t, srv)
			if !tt.records {
				must(t, srv.SetA("web.test", 0, "10.0.0.2"))
			}
			switch tt.outcome {
			case kept:
				f := waitFailure(t, failures, tt.err, patience)
				checkFailure(t, f, srv.Addr())
				testutil.Eventually(t, patience, "retries", func() bool { return len(failures.all()) >= 3 })
				if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
					t.Fatalf("addresses %v after %d changes, want %v kept", s.Addresses(), len(changes.all()), good)
				}
				for _, f := range failures.all() {
					if !errors.Is(f.Err, tt.err) {
						t.Errorf("failure %v, want %v", f.Err, tt.err)
					}
				}
				// Once the server behaves, the Source follows it again.
				srv.SetMisbehavior(nil)
				srv.CutTCP(0)
				srv.SetRcode("web.test", dns.RcodeSuccess)
				must(t, srv.SetA("web.test", 0, "10.0.0.2"))
				testutil.Eventually(t, patience, "recovery", func() bool {
					return slices.Equal(ips(s.Addresses()), []string{"10.0.0.2"})
				})
			case accepted:
				want := addrs("web.test", 80, tt.want...)
				testutil.Eventually(t, patience, "the new set", func() bool { return slices.Equal(s.Addresses(), want) })
				q := srv.Queries()
				testutil.Eventually(t, patience, "more refreshes", func() bool { return srv.Queries() >= q+2 })
				if f := failures.all(); len(f) != 0 {
					t.Fatalf("failures %v, want none", f)
				}
				if n := len(changes.all()); n != 2 {
					t.Fatalf("%d changes, want 2", n)
				}
			case held:
				// How long it is held is TestScheduleNegativeHold's.
				f := waitFailure(t, failures, tt.err, patience)
				checkFailure(t, f, srv.Addr())
				c := waitChanges(t, changes, 2, patience)
				if len(c) != 2 || len(c[1].Addresses) != 0 || !slices.Equal(c[1].Removed, good) {
					t.Fatalf("changes %+v, want the empty set after the hold", c)
				}
			case clamped:
				// The answers now carry the TTL under test: the next
				// refresh is due at MinTTL (100ms) or MaxTTL less the
				// jitter (90-100ms). When it runs is TestScheduleFollowsTTL's.
				var st State
				testutil.Eventually(t, patience, "an answer with the TTL", func() bool {
					st = s.State()
					return st.Answer.TTL == tt.ttl && st.Next.After(st.Answer.At)
				})
				if d := st.Next.Sub(st.Answer.At); d < 90*time.Millisecond || d > 100*time.Millisecond {
					t.Fatalf("next refresh due %v after an answer with TTL %v, want 90..100ms", d, tt.ttl)
				}
				if f := failures.all(); len(f) != 0 {
					t.Fatalf("failures %v, want none", f)
				}
			}
			if n := len(s.Addresses()); n > maxRecords {
				t.Errorf("%d addresses, more than the %d records a reply may hold", n, maxRecords)
			}
			if grew := liveHeap() - heap0; grew > hostileHeapBound {
				t.Errorf("live heap grew by %d bytes, want ≤ %d", grew, hostileHeapBound)
			}
		})
	}
}

// checkFailure checks what every Failure carries besides its sentinel.
func checkFailure(t *testing.T, f Failure, server string) {
	t.Helper()
	var qe *QueryError
	if !errors.As(f.Err, &qe) || qe.Server != server {
		t.Errorf("failure %v is not a *QueryError for %s", f.Err, server)
	}
	if f.Name != "web.test" || f.Next <= 0 || f.Next > 400*time.Millisecond {
		t.Errorf("failure = %+v, want Next within the test backoff or hold", f)
	}
}

// liveHeap returns the bytes of live heap objects after a collection. Other
// tests running in parallel add noise; the bound it is checked against is
// wide.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestSRVAddressBound: SRV records times their targets' addresses could
// make one reply of under maxRecords records resolve to hundreds of
// thousands of addresses. Such an answer is refused like an oversized reply.
func TestSRVAddressBound(t *testing.T) {
	const name = "_http._tcp.svc.test"
	srv := startDNS(t)
	must(t, srv.SetA("a.test", 60, "10.0.0.1"))
	srv.SetSRV(name, 0, dnstest.SRV{Target: "a.test", Port: 8000, Glue: true})
	bus := newBus(t)
	failures := record(t, bus, FailureTopic(name))
	s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus)
	start(t, s)
	testutil.Eventually(t, patience, "the first set", func() bool { return len(s.Addresses()) == 1 })

	// 400 SRV records for one target with 400 addresses: 800 records,
	// 160,000 addresses.
	var targets []string
	for i := range 400 {
		targets = append(targets, "10.3."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	must(t, srv.SetA("a.test", 60, targets...))
	recs := make([]dnstest.SRV, 400)
	for i := range recs {
		recs[i] = dnstest.SRV{Target: "a.test", Port: uint16(9000 + i), Glue: i == 0} // glue once
	}
	srv.SetSRV(name, 0, recs...)
	f := waitFailure(t, failures, ErrMalformed, patience)
	var qe *QueryError
	if !errors.As(f.Err, &qe) || qe.Server != srv.Addr() {
		t.Errorf("failure %v is not a *QueryError for %s", f.Err, srv.Addr())
	}
	if n := len(s.Addresses()); n != 1 {
		t.Fatalf("%d addresses, want the last good one kept", n)
	}
}

// TestSRVRecordsWithoutData: a record of the type asked for that comes
// without its data (RDLENGTH 0) is malformed. It must not count as an
// answer without addresses, which would empty the set at once.
func TestSRVRecordsWithoutData(t *testing.T) {
	const name = "_http._tcp.svc.test"
	hdr := func(owner string, rrtype uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET}
	}
	// onQuery applies m only to queries of qtype.
	onQuery := func(qtype uint16, m dnstest.Misbehavior) dnstest.Misbehavior {
		return func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
			if req.Question[0].Qtype != qtype {
				return false
			}
			return m(w, req, reply)
		}
	}
	tests := []struct {
		name   string
		glue   bool
		breaks dnstest.Misbehavior
	}{
		{
			name:   "SRV record without target",
			breaks: onQuery(dns.TypeSRV, dnstest.Answer(&dns.SRV{Hdr: hdr(name+".", dns.TypeSRV), Port: 8000})),
		},
		{
			name: "glue A record without data",
			glue: true,
			breaks: onQuery(dns.TypeSRV, func(_ dns.ResponseWriter, _, reply *dns.Msg) bool {
				reply.Extra = append(reply.Extra, &dns.A{Hdr: hdr("a.test.", dns.TypeA)})
				return false
			}),
		},
		{
			name:   "follow-up A record without data",
			breaks: onQuery(dns.TypeA, dnstest.Answer(&dns.A{Hdr: hdr("a.test.", dns.TypeA)})),
		},
		{
			name:   "follow-up AAAA record without data",
			breaks: onQuery(dns.TypeAAAA, dnstest.Answer(&dns.AAAA{Hdr: hdr("a.test.", dns.TypeAAAA)})),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startDNS(t)
			must(t, srv.SetA("a.test", 0, "10.0.0.1"))
			srv.SetSRV(name, 0, dnstest.SRV{Target: "a.test", Port: 8000, Glue: tt.glue})
			bus := newBus(t)
			changes := record(t, bus, Topic(name))
			failures := record(t, bus, FailureTopic(name))
			s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus)
			start(t, s)
			good := waitChanges(t, changes, 1, patience)[0].Addresses

			srv.SetMisbehavior(tt.breaks)
			f := waitFailure(t, failures, ErrMalformed, patience)
			var qe *QueryError
			if !errors.As(f.Err, &qe) || qe.Server != srv.Addr() {
				t.Errorf("failure %v is not a *QueryError for %s", f.Err, srv.Addr())
			}
			if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
				t.Fatalf("addresses %v after %d changes, want %v kept", s.Addresses(), len(changes.all()), good)
			}
		})
	}
}
