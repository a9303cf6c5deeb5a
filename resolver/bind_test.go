package resolver

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/bindtest"
)

func TestBINDFollowsDynamicUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts BIND")
	}
	ns := bindtest.Start(t, "vigil.test",
		"www 1 IN A 10.0.0.1",
		"a 1 IN A 10.0.1.1",
		"b 1 IN A 10.0.1.2",
		"_http._tcp 1 IN SRV 1 10 8080 a",
	)
	bus := newBus(t)

	t.Run("A", func(t *testing.T) {
		changes := record(t, bus, Topic("www.vigil.test"))
		s := mustSource(t, Config{Name: "www.vigil.test", Port: 80, Servers: []string{ns.Addr()}, MinTTL: 10 * time.Millisecond}, bus)
		start(t, s)
		if got := waitChanges(t, changes, 1, patience)[0]; !slices.Equal(ips(got.Addresses), []string{"10.0.0.1"}) {
			t.Fatalf("first change = %+v", got)
		}

		ns.Add(t, "www 1 IN A 10.0.0.2")
		began := time.Now()
		c := waitChanges(t, changes, 2, patience)[1]
		if !slices.Equal(ips(c.Addresses), []string{"10.0.0.1", "10.0.0.2"}) || !slices.Equal(ips(c.Added), []string{"10.0.0.2"}) {
			t.Fatalf("after adding: %+v", c)
		}
		t.Logf("followed an addition in %v", time.Since(began))

		ns.Remove(t, "www 1 IN A 10.0.0.1")
		c = waitChanges(t, changes, 3, patience)[2]
		if !slices.Equal(ips(c.Addresses), []string{"10.0.0.2"}) || !slices.Equal(ips(c.Removed), []string{"10.0.0.1"}) {
			t.Fatalf("after removing: %+v", c)
		}
		if c.Version <= changes.all()[1].Version {
			t.Fatalf("versions not increasing: %+v", changes.all())
		}
	})

	t.Run("SRV", func(t *testing.T) {
		const name = "_http._tcp.vigil.test"
		changes := record(t, bus, Topic(name))
		s := mustSource(t, Config{Name: name, Type: SRV, Servers: []string{ns.Addr()}, MinTTL: 10 * time.Millisecond}, bus)
		start(t, s)
		want := []Address{{IP: netipAddr("10.0.1.1"), Port: 8080, Hostname: "a.vigil.test", Priority: 1, Weight: 10}}
		if got := waitChanges(t, changes, 1, patience)[0]; !slices.Equal(got.Addresses, want) {
			t.Fatalf("first change = %+v, want %v", got, want)
		}

		ns.Add(t, "_http._tcp 1 IN SRV 2 20 9090 b")
		c := waitChanges(t, changes, 2, patience)[1]
		add := Address{IP: netipAddr("10.0.1.2"), Port: 9090, Hostname: "b.vigil.test", Priority: 2, Weight: 20}
		if !slices.Equal(c.Added, []Address{add}) || len(c.Addresses) != 2 {
			t.Fatalf("after adding a target: %+v", c)
		}

		ns.ReplaceRRset(t, "a.vigil.test", dns.TypeA, "a 1 IN A 10.0.1.3")
		c = waitChanges(t, changes, 3, patience)[2]
		if !slices.Equal(ips(c.Addresses), []string{"10.0.1.2", "10.0.1.3"}) {
			t.Fatalf("after readdressing a target: %+v", c)
		}
	})
}

// TestBINDDualStackAndFailingSRVTarget: against BIND, an IP name gives its
// A and AAAA records as one set and follows updates of either; an SRV
// target whose lookup turns into SERVFAIL (a CNAME into a broken
// delegation) keeps its last addresses while a new target is added, then
// is dropped after NXDomainHold.
func TestBINDDualStackAndFailingSRVTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts BIND")
	}
	ns := bindtest.StartConfig(t, bindtest.Config{
		Zone: "vigil.test",
		Records: []string{
			"www 1 IN A 10.0.0.1",
			"www 1 IN AAAA fd00::1",
			"a 1 IN A 10.0.1.1",
			"a 1 IN AAAA fd00:1::1",
			"b 1 IN A 10.0.1.2",
			"c 1 IN A 10.0.1.3",
			"_svc._tcp 1 IN SRV 1 10 8080 a",
			"_svc._tcp 1 IN SRV 1 10 8080 b",
			"_svc._tcp 1 IN SRV 1 10 8080 c",
		},
		Broken: []string{"broken"},
	})
	bus := newBus(t)

	t.Run("IP", func(t *testing.T) {
		changes := record(t, bus, Topic("www.vigil.test"))
		failures := record(t, bus, FailureTopic("www.vigil.test"))
		s := mustSource(t, Config{Name: "www.vigil.test", Type: IP, Port: 80, Servers: []string{ns.Addr()}, MinTTL: 10 * time.Millisecond}, bus)
		start(t, s)
		if got := waitChanges(t, changes, 1, patience)[0]; !slices.Equal(ips(got.Addresses), []string{"10.0.0.1", "fd00::1"}) {
			t.Fatalf("first change = %+v", got)
		}
		ns.Add(t, "www 1 IN AAAA fd00::2")
		c := waitChanges(t, changes, 2, patience)[1]
		if !slices.Equal(ips(c.Addresses), []string{"10.0.0.1", "fd00::1", "fd00::2"}) || !slices.Equal(ips(c.Added), []string{"fd00::2"}) {
			t.Fatalf("after adding an AAAA record: %+v", c)
		}
		ns.RemoveRRset(t, "www.vigil.test", dns.TypeA)
		c = waitChanges(t, changes, 3, patience)[2]
		if !slices.Equal(ips(c.Addresses), []string{"fd00::1", "fd00::2"}) {
			t.Fatalf("after removing the A records: %+v", c)
		}
		if f := failures.all(); len(f) != 0 {
			t.Fatalf("failures %v: A NODATA next to AAAA records is none", f)
		}
	})

	t.Run("SRV", func(t *testing.T) {
		const (
			name = "_svc._tcp.vigil.test"
			hold = 5 * time.Second // longer than the two updates that break c and add d take on a loaded machine
		)
		changes := record(t, bus, Topic(name))
		failures := record(t, bus, FailureTopic(name))
		s := mustSource(t, Config{
			Name: name, Type: SRV, Servers: []string{ns.Addr()},
			MinTTL: 10 * time.Millisecond, NXDomainHold: hold,
		}, bus)
		start(t, s)
		if got := waitChanges(t, changes, 1, patience)[0]; len(got.Addresses) != 4 {
			t.Fatalf("first change = %+v, want a.vigil.test's two addresses, b's and c's", got)
		}

		ns.ReplaceRRset(t, "c.vigil.test", dns.TypeA)
		ns.Add(t, "c 1 IN CNAME x.broken", "d 1 IN A 10.0.1.4", "_svc._tcp 1 IN SRV 1 10 8080 d")
		broke := time.Now()
		c := waitValue(t, changes, patience, "d.vigil.test added", func(c Change) bool {
			return slices.Contains(hosts(c.Addresses), "d.vigil.test")
		})
		if !slices.Contains(hosts(c.Addresses), "c.vigil.test") || len(c.Removed) != 0 {
			t.Fatalf("change = %+v, want d.vigil.test added and c.vigil.test kept", c)
		}
		f := waitFailure(t, failures, ErrServerFailure, patience)
		if !f.Partial {
			t.Fatalf("failure = %+v, want a partial one", f)
		}
		t.Logf("partial failure: %v", f.Err)
		c = waitValue(t, changes, hold+patience, "c.vigil.test dropped", func(c Change) bool {
			return !slices.Contains(hosts(c.Addresses), "c.vigil.test")
		})
		t.Logf("c.vigil.test dropped %v after it broke (NXDomainHold %v; the timing is TestScheduleSRVTargetHeld's)", time.Since(broke), hold)
		if !slices.Equal(ips(c.Removed), []string{"10.0.1.3"}) || len(c.Addresses) != 4 {
			t.Fatalf("change = %+v, want c's address removed", c)
		}
	})
}
