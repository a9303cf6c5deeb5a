package health

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// An address that leaves and returns while its probe hangs never has two
// probes in flight, whatever reschedules it meanwhile (a status change, new
// settings): flapping DNS cannot pile up hung probes and starve the other
// targets of workers. The returning address is probed once the old probe
// ends.
func TestOneProbeInFlightAcrossLeaveAndReturn(t *testing.T) {
	bs := backends(t, "127.0.70.1", 2, nil)
	hung, fine := bs[0], bs[1]
	hung.SetMode(backendtest.Hang)
	a, b := hung.Address("flap.test"), fine.Address("flap.test")
	cfg := fast("flap", 50*time.Millisecond)
	cfg.Active.Timeout = 1500 * time.Millisecond
	c := newChecker(t, cfg, nil, nil, WithMaxProbes(3))
	start(t, c)
	c.SetTargets([]resolver.Address{a, b})
	testutil.Eventually(t, 2*time.Second, "the first probe of the hung address", func() bool { return hung.Requests() == 1 })

	for range 4 { // the address flaps in and out of the target set
		c.SetTargets([]resolver.Address{b})
		c.SetTargets([]resolver.Address{a, b})
	}
	// Neither a status change nor new settings may start a second probe.
	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a) // the passive threshold: a turns unhealthy and is rescheduled
	upd := c.Config()
	upd.Active.Unhealthy.Interval = 40 * time.Millisecond
	upd.Active.Path = "/other"
	if err := c.Update(upd); err != nil {
		t.Fatal(err)
	}
	if s := c.Status(a); s != Unhealthy {
		t.Fatalf("after two reported TCP failures a is %v", s)
	}
	before := fine.Requests()
	testutil.Eventually(t, 2*time.Second, "the other target to keep being probed", func() bool { return fine.Requests() >= before+5 })
	if n := hung.Requests(); n != 1 {
		t.Fatalf("%d probes of %v started while its first one hangs, want 1", n, a)
	}
	testutil.Eventually(t, 3*time.Second, "the returned address to be probed after the hung probe ended",
		func() bool { return hung.Requests() >= 2 })
}

// Stopping Run cuts the probes in flight at once, long before their
// timeout, and their connections are closed: a hung backend holds no
// connection of a stopped checker.
func TestRunStopCutsHungProbes(t *testing.T) {
	var srvs []*rawServer
	var as []resolver.Address
	for i := range 3 {
		s := startRaw(t, "127.77.5."+strconv.Itoa(i+1), func(c net.Conn) {
			if readRequest(c) {
				waitClosed(c)
			}
		})
		srvs = append(srvs, s)
		as = append(as, s.addr)
	}
	cfg := fast("stop", time.Second)
	cfg.Active.Timeout = 20 * time.Second
	c := newChecker(t, cfg, nil, nil)
	c.SetTargets(as)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	testutil.Eventually(t, 3*time.Second, "every probe to hang", func() bool {
		for _, s := range srvs {
			if s.openConns() != 1 {
				return false
			}
		}
		return c.Stats().InFlight == len(as)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of its context's end while probes hung (timeout 20s)")
	}
	if n := c.Stats().InFlight; n != 0 {
		t.Fatalf("%d probes in flight after Run returned", n)
	}
	testutil.Eventually(t, 2*time.Second, "the hung probes' connections to be closed", func() bool {
		for _, s := range srvs {
			if s.openConns() != 0 {
				return false
			}
		}
		return true
	})
}
