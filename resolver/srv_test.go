package resolver

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// threeTargets returns a server with _x._tcp.svc.test pointing at a.test,
// b.test and c.test (port 8000 + i), each with an A and an AAAA record,
// TTL 0, glue if asked.
func threeTargets(t *testing.T, glue bool) *dnstest.Server {
	t.Helper()
	srv := startDNS(t)
	for i, h := range []string{"a", "b", "c"} {
		must(t, srv.SetA(h+".test", 0, "10.0.0."+string(rune('1'+i))))
		must(t, srv.SetAAAA(h+".test", 0, "fd00::"+string(rune('1'+i))))
	}
	srv.SetSRV("_x._tcp.svc.test", 0,
		dnstest.SRV{Target: "a.test", Port: 8001, Glue: glue},
		dnstest.SRV{Target: "b.test", Port: 8002, Glue: glue},
		dnstest.SRV{Target: "c.test", Port: 8003, Glue: glue})
	return srv
}

// hosts returns the hostnames of as, each once, in order.
func hosts(as []Address) []string {
	var out []string
	for _, a := range as {
		if !slices.Contains(out, a.Hostname) {
			out = append(out, a.Hostname)
		}
	}
	return out
}

// TestSRVTargetFailureKeepsItsAddresses: one target's lookups fail; the
// rest of the set applies (a target is added, another readdressed), the
// failing target keeps its last addresses for NXDomainHold, then they are
// dropped. Every resolution with the failure publishes a partial Failure.
func TestSRVTargetFailureKeepsItsAddresses(t *testing.T) {
	const (
		name = "_x._tcp.svc.test"
		hold = 3 * time.Second // longer than the resolutions between breaking c.test and adding d.test take on a loaded machine
	)
	tests := []struct {
		name    string
		breaks  func(*dnstest.Server)
		want    error
		timeout time.Duration // short for the case that times out; long enough for load not to time out the others
	}{
		{"SERVFAIL", func(s *dnstest.Server) { s.SetRcode("c.test", dns.RcodeServerFailure) }, ErrServerFailure, 5 * time.Second},
		{"timeout", func(s *dnstest.Server) {
			s.SetMisbehavior(func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
				if canonName := req.Question[0].Name; canonName == "c.test." {
					return dnstest.Drop(w, req, reply)
				}
				return false
			})
		}, ErrTimeout, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := threeTargets(t, false)
			bus := newBus(t)
			changes := record(t, bus, Topic(name))
			failures := record(t, bus, FailureTopic(name))
			s := mustSource(t, Config{
				Name: name, Type: SRV, Servers: []string{srv.Addr()},
				MinTTL: 20 * time.Millisecond, Timeout: tt.timeout, NXDomainHold: hold,
			}, bus)
			start(t, s)
			if got := waitChanges(t, changes, 1, patience)[0]; len(got.Addresses) != 6 {
				t.Fatalf("first change %+v, want 6 addresses", got)
			}

			tt.breaks(srv)
			must(t, srv.SetA("d.test", 0, "10.0.0.4"))
			must(t, srv.SetA("b.test", 0, "10.0.0.22"))
			srv.SetSRV(name, 0,
				dnstest.SRV{Target: "b.test", Port: 8002},
				dnstest.SRV{Target: "c.test", Port: 8003},
				dnstest.SRV{Target: "d.test", Port: 8004})
			broke := time.Now()
			c := waitValue(t, changes, patience, "the rest applied", func(c Change) bool {
				return slices.Contains(hosts(c.Addresses), "d.test")
			})
			if got, want := ips(c.Addresses), []string{"10.0.0.3", "10.0.0.4", "10.0.0.22", "fd00::2", "fd00::3"}; !slices.Equal(got, want) {
				t.Fatalf("addresses %v, want %v: a.test gone, b.test readdressed, c.test kept, d.test added", got, want)
			}
			f := waitValue(t, failures, patience, "a partial failure for c.test", func(f Failure) bool {
				return f.Partial && slices.ContainsFunc(queryErrors(f.Err), func(qe *QueryError) bool { return qe.Name == "c.test." })
			})
			if !errors.Is(f.Err, tt.want) || f.Next <= 0 {
				t.Fatalf("failure = %+v, want a partial one for c.test, of %v", f, tt.want)
			}

			last := waitValue(t, changes, patience, "c.test dropped", func(c Change) bool {
				return !slices.Contains(hosts(c.Addresses), "c.test")
			})
			t.Logf("c.test dropped %v after it began failing (NXDomainHold %v; the timing is TestScheduleSRVTargetHeld's)", time.Since(broke), hold)
			if got := hosts(last.Addresses); !slices.Equal(got, []string{"d.test", "b.test"}) {
				t.Fatalf("hosts %v, want b.test and d.test", got)
			}
			n := len(failures.all())
			testutil.Eventually(t, patience, "failures go on", func() bool { return len(failures.all()) >= n+2 })
		})
	}
}

// TestSRVAllTargetsFailKeepsAll: when no target gives an address and one
// fails, there is no rest to apply: the whole resolution fails and the set
// is kept, past NXDomainHold.
func TestSRVAllTargetsFailKeepsAll(t *testing.T) {
	const name = "_x._tcp.svc.test"
	srv := threeTargets(t, false)
	bus := newBus(t)
	changes := record(t, bus, Topic(name))
	failures := record(t, bus, FailureTopic(name))
	s := mustSource(t, Config{
		Name: name, Type: SRV, Servers: []string{srv.Addr()},
		MinTTL: 20 * time.Millisecond, NXDomainHold: 50 * time.Millisecond,
	}, bus)
	start(t, s)
	good := waitChanges(t, changes, 1, patience)[0].Addresses
	srv.SetRcode("a.test", dns.RcodeServerFailure)
	srv.SetRcode("b.test", dns.RcodeServerFailure)
	srv.Remove("c.test")
	f := waitFailure(t, failures, ErrServerFailure, patience)
	if f.Partial {
		t.Fatalf("failure = %+v, want a whole failure", f)
	}
	testutil.Eventually(t, patience, "more failures", func() bool { return len(failures.all()) >= 5 })
	if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
		t.Fatalf("addresses %v after %d changes, want %v kept", s.Addresses(), len(changes.all()), good)
	}
}

// TestSRVQueriesPerRefresh counts the queries of one resolution of three
// targets by family and glue.
func TestSRVQueriesPerRefresh(t *testing.T) {
	tests := []struct {
		family Family
		glue   bool
		want   int64
		addrs  int
	}{
		{DualStack, false, 7, 6},
		{IPv4Only, false, 4, 3},
		{IPv6Only, false, 4, 3},
		{DualStack, true, 1, 6},
		{IPv4Only, true, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.family.String()+map[bool]string{true: ", glue", false: ", no glue"}[tt.glue], func(t *testing.T) {
			srv := threeTargets(t, tt.glue)
			s := mustSource(t, Config{Name: "_x._tcp.svc.test", Type: SRV, Family: tt.family, Servers: []string{srv.Addr()}, MinTTL: time.Hour, MaxTTL: time.Hour}, nil)
			start(t, s)
			testutil.Eventually(t, patience, "the set", func() bool { return len(s.Addresses()) == tt.addrs })
			if n := srv.Queries(); n != tt.want {
				t.Fatalf("%d queries, want %d", n, tt.want)
			}
			for _, a := range s.Addresses() {
				if tt.family == IPv4Only && !a.IP.Is4() || tt.family == IPv6Only && a.IP.Is4() {
					t.Fatalf("%v is not of %v", a, tt.family)
				}
			}
		})
	}
}

// queryErrors returns the *QueryErrors in the tree of err.
func queryErrors(err error) []*QueryError {
	var qe *QueryError
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []*QueryError
		for _, c := range e.Unwrap() {
			out = append(out, queryErrors(c)...)
		}
		return out
	}
	if errors.As(err, &qe) {
		return []*QueryError{qe}
	}
	return nil
}
