package resolver

import (
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil/internal/dnstest"
)

// Every query is published on QueryTopic: answered ones without an error,
// SERVFAIL with ErrServerFailure, a dead server with ErrTimeout, and CNAME
// follow-ups under the name they asked.
func TestQueryTopic(t *testing.T) {
	srv := startDNS(t)
	if err := srv.SetA("real.test.", 1, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	srv.SetCNAME("alias.test.", "real.test.", 1)
	bus := newBus(t)
	qs := record(t, bus, QueryTopic("alias.test"))
	s := mustSource(t, Config{Name: "alias.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}, MinTTL: 50 * time.Millisecond}, bus)
	start(t, s)

	ok := waitValue(t, qs, patience, "an answered query", func(q Query) bool { return q.Err == nil })
	if ok.Name != "alias.test" || ok.QName != "alias.test." || ok.Type != "A" || ok.Server != srv.Addr() {
		t.Errorf("answered query = %+v, want Name alias.test, QName alias.test., Type A, Server %s", ok, srv.Addr())
	}
	if ok.Duration <= 0 || ok.Duration > 5*time.Second {
		t.Errorf("duration %v out of range", ok.Duration)
	}

	srv.SetRcode("alias.test.", dns.RcodeServerFailure)
	fail := waitValue(t, qs, patience, "a SERVFAIL query", func(q Query) bool { return q.Err != nil })
	if !errors.Is(fail.Err, ErrServerFailure) || fail.QName != "alias.test." || fail.Server != srv.Addr() {
		t.Errorf("failed query = %+v, want ErrServerFailure from %s", fail, srv.Addr())
	}
}

// A server that never answers gives a Query with ErrTimeout per attempt;
// a Source without a bus still resolves.
func TestQueryTopicTimeout(t *testing.T) {
	srv := startDNS(t)
	if err := srv.SetA("svc.test.", 1, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	srv.SetMisbehavior(dnstest.Drop)
	bus := newBus(t)
	qs := record(t, bus, QueryTopic("svc.test"))
	s := mustSource(t, Config{Name: "svc.test", Port: 80, Servers: []string{srv.Addr()}, Timeout: 50 * time.Millisecond}, bus)
	start(t, s)
	q := waitValue(t, qs, patience, "a timed-out query", func(q Query) bool { return q.Err != nil })
	if !errors.Is(q.Err, ErrTimeout) || q.Duration < 40*time.Millisecond {
		t.Errorf("query = %+v, want ErrTimeout after about 50ms", q)
	}

	quiet := mustSource(t, Config{Name: "svc.test", Port: 80, Servers: []string{srv.Addr()}}, nil)
	if quiet.lk.observe != nil {
		t.Error("a Source without a bus observes its queries")
	}
}
