package resolver

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/bindtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// Backoff of the outage tests: 20ms doubling to 160ms.
const (
	outageBase = 20 * time.Millisecond
	outageMax  = 160 * time.Millisecond
)

// goroutineSlack is how many goroutines beyond the count before an outage
// may exist during it: a query's connection and timers, bus deliveries.
const goroutineSlack = 8

// watchOutage checks, at every poll until at least n Failures were
// recorded, that the Source keeps good and publishes no Change, and that
// goroutines do not pile up. It returns the Failures and the largest
// goroutine count seen.
func watchOutage(t *testing.T, s *Source, changes *recorder[Change], failures *recorder[Failure],
	good []Address, n, baseGoroutines int) ([]Failure, int) {
	t.Helper()
	peak := 0
	testutil.Eventually(t, patience, "the failures of the outage", func() bool {
		if got := s.Addresses(); !slices.Equal(got, good) {
			t.Fatalf("addresses %v during the outage, want %v kept", got, good)
		}
		if c := changes.all(); len(c) != 1 {
			t.Fatalf("changes during the outage: %+v", c[1:])
		}
		g := runtime.NumGoroutine()
		peak = max(peak, g)
		if g > baseGoroutines+goroutineSlack {
			t.Fatalf("%d goroutines during the outage, %d before it", g, baseGoroutines)
		}
		return len(failures.all()) >= n
	})
	return failures.all(), peak
}

// checkBackoff checks that the Failures of an outage are network errors or
// timeouts, retried after a growing delay up to the cap (with its jitter).
func checkBackoff(t *testing.T, fs []Failure) {
	t.Helper()
	for i, f := range fs {
		if !errors.Is(f.Err, ErrNetwork) && !errors.Is(f.Err, ErrTimeout) {
			t.Errorf("failure %d: %v, want a network error or a timeout", i, f.Err)
		}
		if f.Next > outageMax*12/10 {
			t.Errorf("failure %d: next try in %v, above the %v cap", i, f.Next, outageMax)
		}
	}
	// 20, 40, 80, 160ms ±20%: each more than the one before.
	for i := 1; i < min(len(fs), 4); i++ {
		if fs[i].Next <= fs[i-1].Next {
			t.Errorf("backoff not growing: %v then %v", fs[i-1].Next, fs[i].Next)
		}
	}
}

func TestDNSServerOutage(t *testing.T) {
	srv := startDNS(t)
	addr := srv.Addr()
	must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{
		Name: "web.test", Port: 80, Servers: []string{addr},
		MinTTL: 20 * time.Millisecond, Timeout: time.Second, // the closed port refuses at once; the server back must not time out under load
	}, bus, withBackoff(outageBase, outageMax))
	start(t, s)
	good := waitChanges(t, changes, 1, patience)[0].Addresses
	q := srv.Queries()
	testutil.Eventually(t, patience, "refreshes", func() bool { return srv.Queries() >= q+2 })
	base := runtime.NumGoroutine()

	must(t, srv.Close())
	began := time.Now()
	fs, peak := watchOutage(t, s, changes, failures, good, 6, base)
	checkBackoff(t, fs)
	t.Logf("outage: %d failures in %v, goroutines %d before, at most %d during", len(fs), time.Since(began), base, peak)

	// A new server on the same address, with one more record.
	var back *dnstest.Server
	testutil.Eventually(t, patience, "the address to be free again", func() bool {
		var err error
		back, err = dnstest.Start(addr)
		return err == nil
	})
	t.Cleanup(func() { _ = back.Close() })
	must(t, back.SetA("web.test", 0, "10.0.0.1", "10.0.0.2", "10.0.0.3"))
	began = time.Now()
	c := waitChanges(t, changes, 2, patience)[1]
	if !slices.Equal(ips(c.Addresses), []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) || len(c.Removed) != 0 {
		t.Fatalf("change after recovery = %+v", c)
	}
	t.Logf("recovered %v after the server came back", time.Since(began))
	n := len(failures.all())
	q = back.Queries()
	testutil.Eventually(t, patience, "refreshes after recovery", func() bool { return back.Queries() >= q+3 })
	if m := len(failures.all()); m != n {
		t.Fatalf("%d failures after recovery", m-n)
	}
}

func TestBINDRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts BIND")
	}
	ns := bindtest.Start(t, "vigil.test", "www 1 IN A 10.0.0.1")
	bus := newBus(t)
	changes := record(t, bus, Topic("www.vigil.test"))
	failures := record(t, bus, FailureTopic("www.vigil.test"))
	s := mustSource(t, Config{
		Name: "www.vigil.test", Port: 80, Servers: []string{ns.Addr()},
		MinTTL: 10 * time.Millisecond, Timeout: 200 * time.Millisecond,
	}, bus, withBackoff(outageBase, outageMax))
	start(t, s)
	ns.Add(t, "www 1 IN A 10.0.0.2")
	good := waitValue(t, changes, patience, "both addresses", func(c Change) bool {
		return len(c.Addresses) == 2
	}).Addresses
	all := changes.all()
	changes = record(t, bus, Topic("www.vigil.test")) // from here on: the latest only
	waitChanges(t, changes, 1, patience)
	base := runtime.NumGoroutine()

	ns.Stop(t)
	began := time.Now()
	fs, peak := watchOutage(t, s, changes, failures, good, 5, base)
	checkBackoff(t, fs)
	t.Logf("outage: %d failures in %v, goroutines %d before, at most %d during", len(fs), time.Since(began), base, peak)

	// named keeps the update made before the outage in its journal: the
	// change that follows the restart removes nothing.
	ns.Restart(t)
	ns.Add(t, "www 1 IN A 10.0.0.3")
	began = time.Now()
	c := waitChanges(t, changes, 2, patience)[1]
	if !slices.Equal(ips(c.Addresses), []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) || len(c.Removed) != 0 {
		t.Fatalf("change after the restart = %+v (before: %+v)", c, all)
	}
	t.Logf("followed an update %v after it was made on the restarted server", time.Since(began))
}
