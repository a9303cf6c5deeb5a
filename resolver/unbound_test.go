package resolver

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/bindtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/internal/unboundtest"
)

// cached starts BIND for vigil.test with records and Unbound in front of
// it.
func cached(t *testing.T, cfg unboundtest.Config, records ...string) (*bindtest.Server, *unboundtest.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts BIND and Unbound")
	}
	ns := bindtest.Start(t, "vigil.test", records...)
	cfg.Stubs = map[string]string{"vigil.test": ns.Addr()}
	return ns, unboundtest.Start(t, cfg)
}

// ttlAt asks server for name's A records and returns their TTL.
func ttlAt(t *testing.T, server, name string) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, server)
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("%s at %s: %v, %v", name, server, r, err)
	}
	return r.Answer[0].Header().Ttl
}

// followThroughCache changes www.vigil.test at BIND while a Source follows
// it through Unbound, and returns how long the Change took and the TTL
// Unbound gave for the old record at the moment of the change (the whole
// seconds it had left).
func followThroughCache(t *testing.T, ns *bindtest.Server, ub *unboundtest.Server, changes *recorder[Change], next string) (time.Duration, uint32) {
	t.Helper()
	n := len(changes.all())
	left := ttlAt(t, ub.Addr(), "www.vigil.test")
	ns.ReplaceRRset(t, "www.vigil.test", dns.TypeA, "www 3 IN A "+next)
	changed := time.Now()
	c := waitChanges(t, changes, n+1, patience)[n]
	if !slices.Equal(ips(c.Addresses), []string{next}) {
		t.Fatalf("change = %+v, want %s", c, next)
	}
	return time.Since(changed), left
}

// TestUnboundTTLCountsDown: through a cache, the TTL the Source sees is
// what the cache has left, never more than the record's (3s), and its next
// refresh is due when that runs out, so that a record changed at BIND
// reaches the Source within about that remaining TTL, not a whole TTL
// later. How long it takes is measured in BenchmarkFollowThroughUnbound
// (docs/benchmarks.md); here it is only logged.
func TestUnboundTTLCountsDown(t *testing.T) {
	ns, ub := cached(t, unboundtest.Config{}, "www 3 IN A 10.0.0.1")
	bus := newBus(t)
	changes := record(t, bus, Topic("www.vigil.test"))
	failures := record(t, bus, FailureTopic("www.vigil.test"))
	s := mustSource(t, Config{Name: "www.vigil.test", Port: 80, Servers: []string{ub.Addr()}, MinTTL: 50 * time.Millisecond}, bus)
	start(t, s)
	waitChanges(t, changes, 1, patience)
	for i, next := range []string{"10.0.0.2", "10.0.0.3"} {
		took, left := followThroughCache(t, ns, ub, changes, next)
		t.Logf("change %d: followed after %v; the cache had %ds left", i+1, took, left)
		st := settled(t, s)
		if st.Answer.TTL > 3*time.Second || st.Next.Sub(st.Answer.At) > max(st.Answer.TTL, 50*time.Millisecond) {
			t.Fatalf("answer TTL %v, next refresh %v after it; want at most the record's 3s, and due when it runs out",
				st.Answer.TTL, st.Next.Sub(st.Answer.At))
		}
	}
	if f := failures.all(); len(f) != 0 {
		t.Fatalf("failures %v", f)
	}
}

// TestUnboundServeExpired: with BIND down, Unbound answers with the expired
// record (serve-expired): the Source keeps its set without a Failure, and
// follows the change made once BIND is back.
func TestUnboundServeExpired(t *testing.T) {
	ns, ub := cached(t, unboundtest.Config{ServeExpiredReplyTTL: 7, ServeExpiredClientTimeout: 300 * time.Millisecond}, "www 1 IN A 10.0.0.1")
	bus := newBus(t)
	changes := record(t, bus, Topic("www.vigil.test"))
	failures := record(t, bus, FailureTopic("www.vigil.test"))
	queries := record(t, bus, QueryTopic("www.vigil.test"))
	s := mustSource(t, Config{
		Name: "www.vigil.test", Port: 80, Servers: []string{ub.Addr()},
		MinTTL: 50 * time.Millisecond, MaxTTL: 500 * time.Millisecond, Timeout: 3 * time.Second,
	}, bus)
	start(t, s)
	good := waitChanges(t, changes, 1, patience)[0].Addresses

	ns.Stop(t)
	testutil.Eventually(t, patience, "an expired record served", func() bool { return ttlAt(t, ub.Addr(), "www.vigil.test") == 7 })
	n := len(queries.all())
	testutil.Eventually(t, patience, "two refreshes during the outage", func() bool { return len(queries.all()) >= n+2 })
	if f := failures.all(); len(f) != 0 || !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
		t.Fatalf("during the outage: failures %v, addresses %v, %d changes; want the set kept without failures",
			f, s.Addresses(), len(changes.all()))
	}

	ns.Restart(t)
	ns.ReplaceRRset(t, "www.vigil.test", dns.TypeA, "www 1 IN A 10.0.0.2")
	c := waitChanges(t, changes, 2, patience)[1]
	if !slices.Equal(ips(c.Addresses), []string{"10.0.0.2"}) {
		t.Fatalf("after BIND came back: %+v", c)
	}
}
