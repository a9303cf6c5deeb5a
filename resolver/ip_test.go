package resolver

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// dualStack returns a server with A 10.0.0.1 and AAAA fd00::1 for
// web.test, TTL 0.
func dualStack(t *testing.T) *dnstest.Server {
	t.Helper()
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1"))
	must(t, srv.SetAAAA("web.test", 0, "fd00::1"))
	return srv
}

func TestIPOneSet(t *testing.T) {
	srv := dualStack(t)
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{Name: "Web.Test.", Type: IP, Port: 80, Servers: []string{srv.Addr()}}, bus)
	start(t, s)
	got := waitChanges(t, changes, 1, patience)[0]
	if want := addrs("web.test", 80, "10.0.0.1", "fd00::1"); got.Name != "web.test" || !slices.Equal(got.Addresses, want) {
		t.Fatalf("change = %+v, want Name web.test and %v", got, want)
	}
	for _, a := range got.Addresses {
		if a.IP.Zone() != "" {
			t.Errorf("%v has a zone; DNS cannot carry one", a)
		}
	}
	if n, m := srv.QueriesFor("web.test", dns.TypeA), srv.QueriesFor("web.test", dns.TypeAAAA); n != 1 || m != 1 {
		t.Errorf("%d A and %d AAAA queries, want 1 each", n, m)
	}
	if f := failures.all(); len(f) != 0 {
		t.Errorf("failures %v", f)
	}
}

// TestIPQueriesConcurrently: the server holds the reply to the first A
// query until the AAAA query has arrived, and the other way round, for
// longer than the timeout. Sequential lookups would time out; concurrent
// ones both get their answer in one round trip, however slowly the
// machine runs.
func TestIPQueriesConcurrently(t *testing.T) {
	srv := dualStack(t)
	var once [2]sync.Once
	arrived := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	barrier := func(mine, other int) dnstest.Misbehavior {
		return func(dns.ResponseWriter, *dns.Msg, *dns.Msg) bool {
			once[mine].Do(func() { close(arrived[mine]) })
			select {
			case <-arrived[other]:
			case <-time.After(2 * patience): // beyond the timeout
			}
			return false
		}
	}
	a, aaaa := barrier(0, 1), barrier(1, 0)
	srv.SetMisbehavior(func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
		if req.Question[0].Qtype == dns.TypeA {
			return a(w, req, reply)
		}
		return aaaa(w, req, reply)
	})
	bus := newBus(t)
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Type: IP, Port: 80, Servers: []string{srv.Addr()}, Timeout: patience}, bus)
	start(t, s)
	testutil.Eventually(t, patience, "both families", func() bool { return len(s.Addresses()) == 2 })
	if f := failures.all(); len(f) != 0 {
		t.Fatalf("failures %v: the A and AAAA queries did not run at the same time", f)
	}
}

func TestIPOneFamilyNegative(t *testing.T) {
	tests := []struct {
		name string
		set  func(*dnstest.Server)
		want []string
	}{
		{"A only (AAAA NODATA)", func(s *dnstest.Server) { must(t, s.SetA("web.test", 0, "10.0.0.1")) }, []string{"10.0.0.1"}},
		{"AAAA only (A NODATA)", func(s *dnstest.Server) { must(t, s.SetAAAA("web.test", 0, "fd00::1")) }, []string{"fd00::1"}},
		{"A, AAAA NXDOMAIN", func(s *dnstest.Server) {
			must(t, s.SetA("web.test", 0, "10.0.0.1"))
			s.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeNameError)
		}, []string{"10.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			tt.set(srv)
			bus := newBus(t)
			changes := record(t, bus, Topic("web.test"))
			failures := record(t, bus, FailureTopic("web.test"))
			s := mustSource(t, Config{Name: "web.test", Type: IP, Port: 80, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus)
			start(t, s)
			got := waitChanges(t, changes, 1, patience)[0]
			if !slices.Equal(ips(got.Addresses), tt.want) {
				t.Fatalf("addresses %v, want %v", got.Addresses, tt.want)
			}
			q := srv.Queries()
			testutil.Eventually(t, patience, "refreshes", func() bool { return srv.Queries() >= q+4 })
			if f := failures.all(); len(f) != 0 {
				t.Fatalf("failures %v, want none: one family's negative answer is no failure", f)
			}
		})
	}
}

// TestIPFamilyFailureKeepsItsAddresses: when the AAAA lookup fails, the
// last IPv6 addresses stay while the A answer applies; a partial Failure
// says so, and a Recovery ends it.
func TestIPFamilyFailureKeepsItsAddresses(t *testing.T) {
	tests := []struct {
		name    string
		breaks  func(*dnstest.Server)
		want    error
		timeout time.Duration // short for the case that times out; long enough for load not to time out the others
	}{
		{"SERVFAIL", func(s *dnstest.Server) { s.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeServerFailure) }, ErrServerFailure, 5 * time.Second},
		{"timeout", func(s *dnstest.Server) { s.SetMisbehavior(dnstest.ForQuestion("web.test", dns.TypeAAAA, dnstest.Drop)) }, ErrTimeout, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dualStack(t)
			bus := newBus(t)
			changes := record(t, bus, Topic("web.test"))
			failures := record(t, bus, FailureTopic("web.test"))
			recoveries := record(t, bus, RecoveryTopic("web.test"))
			s := mustSource(t, Config{
				Name: "web.test", Type: IP, Port: 80, Servers: []string{srv.Addr()},
				MinTTL: 20 * time.Millisecond, Timeout: tt.timeout,
			}, bus)
			start(t, s)
			waitChanges(t, changes, 1, patience)

			tt.breaks(srv)
			must(t, srv.SetA("web.test", 0, "10.0.0.2"))
			must(t, srv.SetAAAA("web.test", 0, "fd00::2")) // must not be seen while AAAA fails
			c := waitChanges(t, changes, 2, patience)[1]
			if want := []string{"10.0.0.2", "fd00::1"}; !slices.Equal(ips(c.Addresses), want) {
				t.Fatalf("change = %+v, want %v: the A answer applied, the last AAAA kept", c, want)
			}
			// Under load the A query may time out too, once: that whole
			// failure keeps the whole set, and is not the one looked for.
			f := waitValue(t, failures, patience, "a partial failure", func(f Failure) bool { return f.Partial })
			var qe *QueryError
			if !errors.Is(f.Err, tt.want) || !errors.As(f.Err, &qe) || qe.Type != "AAAA" || f.Next <= 0 {
				t.Fatalf("failure = %+v, want a partial one for the AAAA lookup", f)
			}
			testutil.Eventually(t, patience, "more failures", func() bool { return len(failures.all()) >= 3 })
			if got := ips(s.Addresses()); !slices.Equal(got, []string{"10.0.0.2", "fd00::1"}) || len(changes.all()) != 2 {
				t.Fatalf("addresses %v after %d changes, want the IPv6 address kept", got, len(changes.all()))
			}
			if r := recoveries.all(); len(r) != 0 {
				t.Fatalf("recoveries %v while AAAA still fails", r)
			}

			srv.SetMisbehavior(nil)
			srv.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeSuccess)
			testutil.Eventually(t, patience, "the new AAAA", func() bool {
				return slices.Equal(ips(s.Addresses()), []string{"10.0.0.2", "fd00::2"})
			})
			r := waitValue(t, recoveries, patience, "a recovery", func(Recovery) bool { return true })
			if r.Name != "web.test" || r.Failures < 3 || r.Duration <= 0 || !errors.Is(r.Err, tt.want) {
				t.Fatalf("recovery = %+v, want ≥3 failures of %v", r, tt.want)
			}
		})
	}
}

// TestIPFailureNextToNegativeKeepsAll: without an address in either family,
// a failure of one is a failure of the whole resolution: the negative
// answer of the other does not tell that the name is gone.
func TestIPFailureNextToNegativeKeepsAll(t *testing.T) {
	srv := dualStack(t)
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{
		Name: "web.test", Type: IP, Port: 80, Servers: []string{srv.Addr()},
		MinTTL: 20 * time.Millisecond, NXDomainHold: 50 * time.Millisecond,
	}, bus)
	start(t, s)
	good := waitChanges(t, changes, 1, patience)[0].Addresses

	srv.SetRcodeFor("web.test", dns.TypeAAAA, dns.RcodeServerFailure)
	must(t, srv.SetA("web.test", 0)) // NODATA
	f := waitFailure(t, failures, ErrServerFailure, patience)
	if f.Partial || errors.Is(f.Err, ErrNoData) {
		t.Fatalf("failure = %+v, want a whole failure for the AAAA lookup", f)
	}
	testutil.Eventually(t, patience, "more failures", func() bool { return len(failures.all()) >= 4 })
	if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
		t.Fatalf("addresses %v after %d changes, want %v kept past NXDomainHold", s.Addresses(), len(changes.all()), good)
	}
}

func TestIPFamilyChoice(t *testing.T) {
	for _, tt := range []struct {
		family Family
		want   []string
		asked  uint16
		not    uint16
	}{
		{IPv4Only, []string{"10.0.0.1"}, dns.TypeA, dns.TypeAAAA},
		{IPv6Only, []string{"fd00::1"}, dns.TypeAAAA, dns.TypeA},
	} {
		t.Run(tt.family.String(), func(t *testing.T) {
			srv := dualStack(t)
			s := mustSource(t, Config{Name: "web.test", Type: IP, Family: tt.family, Port: 80, Servers: []string{srv.Addr()}}, nil)
			start(t, s)
			testutil.Eventually(t, patience, "the set", func() bool { return slices.Equal(ips(s.Addresses()), tt.want) })
			if n := srv.QueriesFor("web.test", tt.not); n != 0 || srv.QueriesFor("web.test", tt.asked) == 0 {
				t.Fatalf("%d %s queries, want none", n, dns.TypeToString[tt.not])
			}
		})
	}
}
