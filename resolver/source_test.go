package resolver

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// TestRefreshFollowsTTL: the next resolution is due when the answer's TTL
// runs out (up to 10% early), and picks up a changed record. The timing
// itself is tested on a fake clock (TestScheduleFollowsTTL).
func TestRefreshFollowsTTL(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 1, "10.0.0.1"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 10 * time.Millisecond}, bus)
	start(t, s)

	waitChanges(t, changes, 1, patience)
	st := settled(t, s)
	if d := st.Next.Sub(st.Answer.At); st.Answer.TTL != time.Second || d < 900*time.Millisecond || d > time.Second {
		t.Fatalf("answer TTL %v, next resolution due %v after it; want 1s, and 0.9s..1s", st.Answer.TTL, d)
	}
	must(t, srv.SetA("web.test", 1, "10.0.0.2"))
	c := waitValue(t, changes, patience, "change to 10.0.0.2", func(c Change) bool {
		return slices.Equal(ips(c.Addresses), []string{"10.0.0.2"})
	})
	if !slices.Equal(s.Addresses(), c.Addresses) {
		t.Errorf("Addresses() = %v, want %v", s.Addresses(), c.Addresses)
	}
}

// settled waits until s has scheduled its next resolution after its last
// answer (State.Next is the start of a resolution while it runs) and
// returns its State.
func settled(t *testing.T, s *Source) State {
	t.Helper()
	var st State
	testutil.Eventually(t, patience, "the next resolution scheduled", func() bool {
		st = s.State()
		return !st.Answer.At.IsZero() && st.Next.After(st.Answer.At)
	})
	return st
}

func TestChangeCarriesAddedRemovedVersion(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 8080, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus)
	start(t, s)

	first := waitChanges(t, changes, 1, patience)[0]
	want := addrs("web.test", 8080, "10.0.0.1", "10.0.0.2")
	if first.Name != "web.test" || !slices.Equal(first.Addresses, want) || !slices.Equal(first.Added, want) || len(first.Removed) != 0 {
		t.Fatalf("first change = %+v, want all of %v added", first, want)
	}
	must(t, srv.SetA("web.test", 0, "10.0.0.3", "10.0.0.2"))
	got := waitChanges(t, changes, 2, patience)[1]
	if !slices.Equal(got.Addresses, addrs("web.test", 8080, "10.0.0.2", "10.0.0.3")) ||
		!slices.Equal(got.Added, addrs("web.test", 8080, "10.0.0.3")) ||
		!slices.Equal(got.Removed, addrs("web.test", 8080, "10.0.0.1")) {
		t.Fatalf("second change = %+v", got)
	}
	if got.Version <= first.Version {
		t.Fatalf("version %d after %d, want increasing", got.Version, first.Version)
	}
	if latest, _ := events.Latest(bus, Topic("web.test")); latest.Version != got.Version {
		t.Errorf("latest on the bus has version %d, want %d", latest.Version, got.Version)
	}
}

func TestNoChangeWhenSetUnchanged(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus)
	start(t, s)

	waitChanges(t, changes, 1, patience)
	testutil.Eventually(t, patience, "3 refreshes", func() bool { return srv.Queries() >= 4 })
	must(t, srv.SetA("web.test", 0, "10.0.0.2", "10.0.0.1")) // same set, other order
	q := srv.Queries()
	testutil.Eventually(t, patience, "3 more refreshes", func() bool { return srv.Queries() >= q+3 })
	if n := len(changes.all()); n != 1 {
		t.Fatalf("%d changes for an unchanged set, want 1: %+v", n, changes.all())
	}
}

func TestSRV(t *testing.T) {
	tests := []struct {
		name string
		recs []dnstest.SRV
		want []Address
	}{
		{
			name: "glue",
			recs: []dnstest.SRV{
				{Target: "a.test", Port: 8001, Priority: 1, Weight: 10, Glue: true},
				{Target: "b.test", Port: 8002, Priority: 2, Weight: 20, Glue: true},
			},
		},
		{
			name: "no glue",
			recs: []dnstest.SRV{
				{Target: "a.test", Port: 8001, Priority: 1, Weight: 10},
				{Target: "b.test", Port: 8002, Priority: 2, Weight: 20},
			},
		},
		{
			name: "partial glue",
			recs: []dnstest.SRV{
				{Target: "a.test", Port: 8001, Priority: 1, Weight: 10, Glue: true},
				{Target: "b.test", Port: 8002, Priority: 2, Weight: 20},
			},
		},
		{
			name: "dot target",
			recs: []dnstest.SRV{
				{Target: "a.test", Port: 8001, Priority: 1, Weight: 10},
				{Target: ".", Port: 8003, Priority: 1, Weight: 10},
				{Target: "b.test", Port: 8002, Priority: 2, Weight: 20, Glue: true},
			},
		},
		{
			name: "port 0", // cannot be connected to: no address, no query
			recs: []dnstest.SRV{
				{Target: "a.test", Port: 8001, Priority: 1, Weight: 10},
				{Target: "a.test", Port: 0, Priority: 1, Weight: 10},
				{Target: "c.test", Port: 0, Priority: 1, Weight: 10},
				{Target: "b.test", Port: 8002, Priority: 2, Weight: 20, Glue: true},
			},
		},
	}
	want := []Address{
		{IP: netip.MustParseAddr("10.0.0.1"), Port: 8001, Hostname: "a.test", Priority: 1, Weight: 10},
		{IP: netip.MustParseAddr("10.0.0.2"), Port: 8002, Hostname: "b.test", Priority: 2, Weight: 20},
		{IP: netip.MustParseAddr("fd00::2"), Port: 8002, Hostname: "b.test", Priority: 2, Weight: 20},
	}
	Sort(want)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("a.test", 60, "10.0.0.1"))
			must(t, srv.SetA("b.test", 60, "10.0.0.2"))
			must(t, srv.SetAAAA("b.test", 60, "fd00::2"))
			srv.SetSRV("_http._tcp.svc.test", 60, tt.recs...)
			bus := newBus(t)
			changes := record(t, bus, Topic("_http._tcp.svc.test"))
			s := mustSource(t, Config{Name: "_http._tcp.svc.test", Type: SRV, Servers: []string{srv.Addr()}}, bus)
			start(t, s)
			got := waitChanges(t, changes, 1, patience)[0]
			if !slices.Equal(got.Addresses, want) {
				t.Fatalf("addresses = %v, want %v", got.Addresses, want)
			}
			for _, target := range []string{"a.test", "b.test"} {
				glued := slices.ContainsFunc(tt.recs, func(r dnstest.SRV) bool { return r.Target == target && r.Glue })
				n := srv.QueriesFor(target, dns.TypeA)
				if glued && n != 0 || !glued && n == 0 {
					t.Errorf("%d follow-up A queries for %s, glue %v", n, target, glued)
				}
			}
			if n := srv.QueriesFor("c.test", dns.TypeA); n != 0 {
				t.Errorf("%d queries for c.test, a target only at port 0", n)
			}
		})
	}
}

func TestSRVOnlyDotTargetIsEmptySet(t *testing.T) {
	srv := startDNS(t)
	srv.SetSRV("_http._tcp.svc.test", 60, dnstest.SRV{Target: "."})
	bus := newBus(t)
	changes := record(t, bus, Topic("_http._tcp.svc.test"))
	s := mustSource(t, Config{Name: "_http._tcp.svc.test", Type: SRV, Servers: []string{srv.Addr()}}, bus)
	start(t, s)
	if got := waitChanges(t, changes, 1, patience)[0]; len(got.Addresses) != 0 {
		t.Fatalf("addresses = %v, want none", got.Addresses)
	}
}

func TestCNAMEChain(t *testing.T) {
	srv := startDNS(t)
	srv.SetCNAME("web.test", "alias1.test", 300)
	srv.SetCNAME("alias1.test", "alias2.test", 1) // the smallest TTL on the chain
	must(t, srv.SetA("alias2.test", 300, "10.0.0.7"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 10 * time.Millisecond}, bus)
	start(t, s)
	got := waitChanges(t, changes, 1, patience)[0]
	if want := addrs("web.test", 80, "10.0.0.7"); !slices.Equal(got.Addresses, want) {
		t.Fatalf("addresses = %v, want %v (hostname is the queried name)", got.Addresses, want)
	}
	if st := settled(t, s); st.Answer.TTL != time.Second || st.Next.Sub(st.Answer.At) > time.Second {
		t.Fatalf("answer TTL %v, next resolution %v after it; want the chain's smallest, 1s", st.Answer.TTL, st.Next.Sub(st.Answer.At))
	}
	testutil.Eventually(t, patience, "refresh after the chain's 1s TTL", func() bool {
		return srv.QueriesFor("web.test", dns.TypeA) >= 2
	})
}

func TestCNAMEChainAcrossQueries(t *testing.T) {
	// The first server answers only the CNAME; the resolver asks for the
	// target itself.
	srv := startDNS(t)
	srv.SetCNAME("web.test", "backend.test", 60)
	must(t, srv.SetA("backend.test", 60, "10.0.0.8"))
	srv.SetMisbehavior(func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
		if len(reply.Answer) > 1 {
			reply.Answer = reply.Answer[:1]
		}
		return false
	})
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}}, nil)
	start(t, s)
	testutil.Eventually(t, patience, "addresses", func() bool {
		return slices.Equal(s.Addresses(), addrs("web.test", 80, "10.0.0.8"))
	})
}

func TestCNAMEErrors(t *testing.T) {
	tests := []struct {
		name  string
		links int  // chain length
		loop  bool // the last name points back to the first
		ok    bool
	}{
		{name: "loop", links: 3, loop: true},
		{name: "self loop", links: 1, loop: true},
		{name: "longer than the bound", links: maxChain + 1},
		{name: "at the bound", links: maxChain, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			name := func(i int) string { return "n" + string(rune('a'+i)) + ".test" }
			for i := range tt.links {
				srv.SetCNAME(name(i), name(i+1), 60)
			}
			if tt.loop {
				srv.SetCNAME(name(tt.links-1), name(0), 60)
			} else {
				must(t, srv.SetA(name(tt.links), 60, "10.0.0.9"))
			}
			bus := newBus(t)
			failures := record(t, bus, FailureTopic(name(0)))
			s := mustSource(t, Config{Name: name(0), Port: 80, Servers: []string{srv.Addr()}}, bus)
			start(t, s)
			if tt.ok {
				testutil.Eventually(t, patience, "addresses", func() bool { return len(s.Addresses()) == 1 })
				return
			}
			f := waitFailure(t, failures, ErrCNAMEChain, patience)
			if len(s.Addresses()) != 0 {
				t.Errorf("addresses %v after a bad chain", s.Addresses())
			}
			if f.Next <= 0 || f.Name != name(0) {
				t.Errorf("failure = %+v", f)
			}
		})
	}
}

func TestTruncationRetriesOverTCP(t *testing.T) {
	t.Run("large answer", func(t *testing.T) {
		srv := startDNS(t)
		var many []string
		for i := range 400 { // more than 4096 bytes over UDP
			many = append(many, "10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
		}
		must(t, srv.SetA("big.test", 60, many...))
		s := mustSource(t, Config{Name: "big.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}}, nil)
		start(t, s)
		testutil.Eventually(t, patience, "400 addresses", func() bool { return len(s.Addresses()) == 400 })
		if srv.TCPQueries() == 0 {
			t.Fatal("no TCP query")
		}
	})
	t.Run("always truncated over UDP", func(t *testing.T) {
		srv := startDNS(t)
		must(t, srv.SetA("web.test", 60, "10.0.0.1"))
		srv.SetMisbehavior(dnstest.TruncateUDP)
		s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}}, nil)
		start(t, s)
		testutil.Eventually(t, patience, "address", func() bool { return len(s.Addresses()) == 1 })
		if srv.TCPQueries() != 1 {
			t.Fatalf("%d TCP queries, want 1", srv.TCPQueries())
		}
	})
}

func TestFailureKeepsLastSet(t *testing.T) {
	// The queries of the cases that time out wait 100ms; the others wait
	// long enough that load cannot make them time out instead.
	tests := []struct {
		name    string
		breaks  func(*dnstest.Server)
		want    error
		timeout time.Duration
	}{
		{"SERVFAIL", func(s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeServerFailure) }, ErrServerFailure, 0},
		{"REFUSED", func(s *dnstest.Server) { s.SetRcode("web.test", dns.RcodeRefused) }, ErrRefused, 0},
		{"timeout", func(s *dnstest.Server) { s.SetMisbehavior(dnstest.Drop) }, ErrTimeout, 100 * time.Millisecond},
		{"garbage", func(s *dnstest.Server) { s.SetMisbehavior(dnstest.Garbage) }, ErrMalformed, 0},
		{"wrong question", func(s *dnstest.Server) { s.SetMisbehavior(dnstest.WrongQuestion) }, ErrMismatch, 0},
		{"wrong ID only", func(s *dnstest.Server) { s.SetMisbehavior(dnstest.WrongID) }, ErrTimeout, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("web.test", 0, "10.0.0.1"))
			bus := newBus(t)
			changes := record(t, bus, Topic("web.test"))
			failures := record(t, bus, FailureTopic("web.test"))
			s := mustSource(t, Config{
				Name: "web.test", Port: 80, Servers: []string{srv.Addr()},
				MinTTL: 20 * time.Millisecond, Timeout: tt.timeout,
			}, bus)
			start(t, s)
			want := waitChanges(t, changes, 1, patience)[0].Addresses

			tt.breaks(srv)
			must(t, srv.SetA("web.test", 0, "10.0.0.2")) // must not be seen
			f := waitFailure(t, failures, tt.want, patience)
			var qe *QueryError
			if !errors.As(f.Err, &qe) || qe.Server != srv.Addr() {
				t.Errorf("failure %v is not a *QueryError for %s", f.Err, srv.Addr())
			}
			if f.Next < 10*time.Millisecond || f.Next > 150*time.Millisecond || f.Name != "web.test" {
				t.Errorf("failure = %+v, want Next within the backoff", f)
			}
			testutil.Eventually(t, patience, "a retry with backoff", func() bool { return len(failures.all()) >= 3 })
			if !slices.Equal(s.Addresses(), want) || len(changes.all()) != 1 {
				t.Fatalf("after failures: addresses %v, %d changes; want %v kept", s.Addresses(), len(changes.all()), want)
			}
			srv.SetRcode("web.test", dns.RcodeSuccess)
			srv.SetMisbehavior(nil)
			testutil.Eventually(t, patience, "recovery", func() bool {
				return slices.Equal(ips(s.Addresses()), []string{"10.0.0.2"})
			})
		})
	}
}

func TestWrongIDIgnored(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 60, "10.0.0.1"))
	srv.SetMisbehavior(dnstest.WrongIDFirst)
	bus := newBus(t)
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}}, bus)
	start(t, s)
	testutil.Eventually(t, patience, "address", func() bool { return len(s.Addresses()) == 1 })
	if f := failures.all(); len(f) != 0 {
		t.Fatalf("failures %v: the reply with the wrong ID was not ignored", f)
	}
}

func TestFailover(t *testing.T) {
	bad := startDNS(t)
	bad.SetRcode("web.test", dns.RcodeServerFailure)
	dead := startDNS(t)
	dead.SetMisbehavior(dnstest.Drop)
	good := startDNS(t)
	must(t, good.SetA("web.test", 0, "10.0.0.1"))

	s := mustSource(t, Config{
		Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{dead.Addr(), bad.Addr(), good.Addr()},
		MinTTL: 20 * time.Millisecond, Timeout: time.Second, // the dead server costs it once; the good one always answers within it
	}, nil)
	start(t, s)
	testutil.Eventually(t, patience, "address", func() bool { return len(s.Addresses()) == 1 })
	testutil.Eventually(t, patience, "refreshes", func() bool { return good.Queries() >= 4 })
	// The server that answered is asked first from then on.
	if dead.Queries() != 1 || bad.Queries() != 1 {
		t.Fatalf("queries: dead %d, bad %d, want 1 each", dead.Queries(), bad.Queries())
	}
}

func TestVersionMonotonicAcrossSources(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	cfg := Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}

	runUntil := func(s *Source, n int) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		waitChanges(t, changes, n, patience)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	runUntil(mustSource(t, cfg, bus), 1)
	// A newer Source for the name, on the same bus, then on none; each
	// finds a new set (an unchanged one would publish nothing).
	must(t, srv.SetA("web.test", 0, "10.0.0.2"))
	runUntil(mustSource(t, cfg, bus), 2)
	must(t, srv.SetA("web.test", 0, "10.0.0.3"))
	other := mustSource(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	testutil.Eventually(t, patience, "address", func() bool { return len(other.Addresses()) == 1 })
	cancel()
	must(t, <-done)
	runUntil(mustSource(t, cfg, bus), 3)

	all := changes.all()
	for i := 1; i < len(all); i++ {
		if all[i].Version <= all[i-1].Version {
			t.Fatalf("version %d after %d", all[i].Version, all[i-1].Version)
		}
	}
	if other.version <= all[1].Version || all[2].Version <= other.version {
		t.Fatalf("versions %d, %d (other bus), %d: not increasing", all[1].Version, other.version, all[2].Version)
	}
}

func TestVersionAboveLatestOnBus(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 60, "10.0.0.1"))
	bus := newBus(t)
	const far = ^uint64(0) >> 1
	events.Publish(bus, Topic("web.test"), Change{Name: "web.test", Version: far})
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}}, bus)
	start(t, s)
	testutil.Eventually(t, patience, "change", func() bool {
		c, _ := events.Latest(bus, Topic("web.test"))
		return c.Version != far
	})
	if c, _ := events.Latest(bus, Topic("web.test")); c.Version != far+1 {
		t.Fatalf("version %d, want %d", c.Version, far+1)
	}
}

func TestRunTwice(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 60, "10.0.0.1"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}}, nil)
	start(t, s)
	testutil.Eventually(t, patience, "address", func() bool { return len(s.Addresses()) == 1 })
	if err := s.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
}

func TestRunReturnsWhenCancelledMidQuery(t *testing.T) {
	srv := startDNS(t)
	srv.SetMisbehavior(dnstest.Drop)
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, Timeout: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.Eventually(t, patience, "query", func() bool { return srv.Queries() >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(patience): // far less than the hour the query would wait
		t.Fatal("Run still waits for the query after cancellation")
	}
	// Run may run again after it returned.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	must(t, s.Run(ctx2))
	_ = ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSRVManyTargetsWithoutGlue: targets without glue are resolved with
// follow-up queries however many there are, within the bound on records.
func TestSRVManyTargetsWithoutGlue(t *testing.T) {
	const name = "_http._tcp.svc.test"
	srv := startDNS(t)
	var recs []dnstest.SRV
	for i := range 40 {
		target := "t" + strconv.Itoa(i) + ".test"
		must(t, srv.SetA(target, 60, "10.4.0."+strconv.Itoa(i)))
		recs = append(recs, dnstest.SRV{Target: target, Port: 8000})
	}
	srv.SetSRV(name, 60, recs...)
	bus := newBus(t)
	failures := record(t, bus, FailureTopic(name))
	s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{srv.Addr()}}, bus)
	start(t, s)
	testutil.Eventually(t, patience, "40 addresses", func() bool { return len(s.Addresses()) == 40 })
	if f := failures.all(); len(f) != 0 {
		t.Fatalf("failures %v, want none", f)
	}
}

// TestSRVPartialGlue: the additional section may hold some families of a
// target's addresses and not others. The set is the same as without glue;
// only the missing families are queried.
func TestSRVPartialGlue(t *testing.T) {
	const name = "_http._tcp.svc.test"
	// strip removes the additional records of type qtype from SRV replies.
	strip := func(qtype uint16) dnstest.Misbehavior {
		return func(_ dns.ResponseWriter, req, reply *dns.Msg) bool {
			if req.Question[0].Qtype == dns.TypeSRV {
				reply.Extra = slices.DeleteFunc(reply.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == qtype })
			}
			return false
		}
	}
	tests := []struct {
		name            string
		misbehave       dnstest.Misbehavior
		wantA, wantAAAA bool // follow-up queries expected
	}{
		{name: "A and AAAA glue", misbehave: nil},
		{name: "A glue only", misbehave: strip(dns.TypeAAAA), wantAAAA: true},
		{name: "AAAA glue only", misbehave: strip(dns.TypeA), wantA: true},
	}
	want := []Address{
		{IP: netip.MustParseAddr("10.0.0.1"), Port: 8001, Hostname: "a.test"},
		{IP: netip.MustParseAddr("fd00::1"), Port: 8001, Hostname: "a.test"},
	}
	Sort(want)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("a.test", 60, "10.0.0.1"))
			must(t, srv.SetAAAA("a.test", 60, "fd00::1"))
			srv.SetSRV(name, 60, dnstest.SRV{Target: "a.test", Port: 8001, Glue: true})
			srv.SetMisbehavior(tt.misbehave)
			bus := newBus(t)
			changes := record(t, bus, Topic(name))
			s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{srv.Addr()}}, bus)
			start(t, s)
			got := waitChanges(t, changes, 1, patience)[0]
			if !slices.Equal(got.Addresses, want) {
				t.Fatalf("addresses = %v, want %v", got.Addresses, want)
			}
			nA, nAAAA := srv.QueriesFor("a.test", dns.TypeA), srv.QueriesFor("a.test", dns.TypeAAAA)
			if (nA > 0) != tt.wantA || (nAAAA > 0) != tt.wantAAAA {
				t.Errorf("follow-up queries: %d A, %d AAAA; want A %v, AAAA %v", nA, nAAAA, tt.wantA, tt.wantAAAA)
			}
		})
	}
}

// TestSRVUnrelatedGlueTTL: additional records of names that are not SRV
// targets are ignored, their TTL too.
func TestSRVUnrelatedGlueTTL(t *testing.T) {
	const name = "_http._tcp.svc.test"
	srv := startDNS(t)
	must(t, srv.SetA("a.test", 60, "10.0.0.1"))
	srv.SetSRV(name, 60, dnstest.SRV{Target: "a.test", Port: 8001, Glue: true})
	srv.SetMisbehavior(func(_ dns.ResponseWriter, _, reply *dns.Msg) bool {
		reply.Extra = append(reply.Extra, &dns.A{
			Hdr: dns.RR_Header{Name: "other.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
			A:   netipAddr("10.9.9.9").AsSlice(),
		})
		return false
	})
	s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, nil)
	start(t, s)
	st := settled(t, s)
	if len(st.Addresses) != 1 || st.Answer.TTL != time.Minute || st.Next.Sub(st.Answer.At) < 54*time.Second {
		t.Fatalf("addresses %v, answer TTL %v, next resolution %v after it; want the 60s TTL of the records that count",
			st.Addresses, st.Answer.TTL, st.Next.Sub(st.Answer.At))
	}
}

// TestRunReturnsPromptlyWhateverTheCancelMoment cancels Run at random
// moments of its first query, against a server that never answers: Run
// must return at once every time, also when the cancellation lands between
// dialling and sending.
func TestRunReturnsPromptlyWhateverTheCancelMoment(t *testing.T) {
	srv := startDNS(t)
	srv.SetMisbehavior(dnstest.Drop)
	s := mustSource(t, Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, Timeout: time.Hour}, nil)
	const (
		maxRuns  = 2000
		maxSpent = 3 * time.Second
		late     = patience // far less than the hour the query would wait
	)
	began := time.Now()
	runs := 0
	for ; runs < maxRuns && time.Since(began) < maxSpent; runs++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		cancel()
		cancelled := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: Run = %v, want nil", runs, err)
			}
		case <-time.After(late):
			<-done
			t.Fatalf("run %d: Run returned %v after cancellation, want within %v", runs, time.Since(cancelled), late)
		}
	}
	t.Logf("%d runs", runs)
}

// TestExchangeCancelledGivesContextError: a query cancelled while it waits
// for the reply fails with the context's error, not as a timeout or a
// network error.
func TestExchangeCancelledGivesContextError(t *testing.T) {
	srv := startDNS(t)
	srv.SetMisbehavior(dnstest.Drop)
	m := new(dns.Msg)
	m.SetQuestion("web.test.", dns.TypeA)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := newNetExchanger(slog.New(slog.DiscardHandler)).exchange(ctx, m, srv.Addr(), time.Hour)
		done <- err
	}()
	testutil.Eventually(t, patience, "query", func() bool { return srv.Queries() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNetwork) || errors.Is(err, ErrTimeout) {
			t.Fatalf("error %v, want context.Canceled only", err)
		}
	case <-time.After(patience): // far less than the hour the query would wait
		t.Fatal("the exchange still waits after cancellation")
	}
}

func TestRefreshDelay(t *testing.T) {
	tests := []struct {
		name        string
		ttl, lo, hi time.Duration
		least, most time.Duration
	}{
		{"TTL below MinTTL", 0, time.Second, time.Minute, time.Second, time.Second},
		{"TTL at MinTTL", time.Second, time.Second, time.Minute, time.Second, time.Second},
		{"TTL just above MinTTL", 1050 * time.Millisecond, time.Second, time.Minute, time.Second, 1050 * time.Millisecond},
		{"TTL well above MinTTL", 10 * time.Second, time.Second, time.Minute, 9 * time.Second, 10 * time.Second},
		{"TTL above MaxTTL", time.Hour, time.Second, time.Minute, 54 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 1000 {
				if d := refreshDelay(tt.ttl, tt.lo, tt.hi); d < tt.least || d > tt.most {
					t.Fatalf("refreshDelay(%v, %v, %v) = %v, want within [%v, %v]", tt.ttl, tt.lo, tt.hi, d, tt.least, tt.most)
				}
			}
		})
	}
}

// TestNewSourceContinuesFromLatestChange: a new Source for a name whose
// earlier Source published on the same bus publishes nothing for an
// unchanged set, and relative to the latest Change when the set differs.
func TestNewSourceContinuesFromLatestChange(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	cfg := Config{Name: "web.test", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}
	// runFor runs a new Source until it has resolved want and refreshed
	// twice more.
	runFor := func(want []Address) *Source {
		t.Helper()
		s := mustSource(t, cfg, bus)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		testutil.Eventually(t, patience, "the set", func() bool { return slices.Equal(s.Addresses(), want) })
		q := srv.Queries()
		testutil.Eventually(t, patience, "refreshes", func() bool { return srv.Queries() >= q+2 })
		cancel()
		must(t, <-done)
		return s
	}
	first := addrs("web.test", 80, "10.0.0.1", "10.0.0.2")
	runFor(first)
	runFor(first)
	if all := changes.all(); len(all) != 1 {
		t.Fatalf("%d changes for one unchanged set over two Sources, want 1: %+v", len(all), all)
	}

	must(t, srv.SetA("web.test", 0, "10.0.0.2", "10.0.0.3"))
	runFor(addrs("web.test", 80, "10.0.0.2", "10.0.0.3"))
	all := waitChanges(t, changes, 2, patience)
	if len(all) != 2 {
		t.Fatalf("%d changes, want 2: %+v", len(all), all)
	}
	got := all[1]
	if !slices.Equal(got.Added, addrs("web.test", 80, "10.0.0.3")) ||
		!slices.Equal(got.Removed, addrs("web.test", 80, "10.0.0.1")) || got.Version <= all[0].Version {
		t.Fatalf("change = %+v, want 10.0.0.3 added and 10.0.0.1 removed relative to %+v", got, all[0])
	}
}
