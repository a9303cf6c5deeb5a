package health

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// TestFollowsRealDNS drives a checker from a resolver.Source that follows a
// real (in-process) DNS server, through scale-up, scale-down and a node that
// leaves and returns, and checks against what the backends actually saw.
func TestFollowsRealDNS(t *testing.T) {
	const name = "svc.e2e.test"
	bs := backends(t, "127.0.0.61", 4, nil)
	port := bs[0].Port
	for _, b := range bs {
		if b.Port != port {
			t.Fatalf("backends do not share a port: %d and %d", port, b.Port)
		}
	}
	addr := func(i int) resolver.Address { return bs[i].Address(name) }
	ip := func(i int) string { return bs[i].IP.String() }

	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	setDNS := func(idx ...int) {
		t.Helper()
		ips := make([]string, len(idx))
		for i, x := range idx {
			ips[i] = ip(x)
		}
		if err := dns.SetA(name, 0, ips...); err != nil { // TTL 0: re-resolved every MinTTL
			t.Fatal(err)
		}
	}
	setDNS(0, 1, 2)

	bus := newBus(t)
	log := recordEvents(t, bus, name)
	cfg := fast(name, 40*time.Millisecond)
	cfg.Active.Healthy.Successes = 3 // recovery takes two intervals after the first probe
	c := newChecker(t, cfg, bus, nil)
	src, err := resolver.NewSource(resolver.Config{
		Name: name, Port: port, Servers: []string{dns.Addr()}, MinTTL: 20 * time.Millisecond,
	}, bus)
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-srcDone; err != nil {
			t.Errorf("Source.Run: %v", err)
		}
	}()

	has := func(i int) bool { return c.Status(addr(i)) != Unknown }
	testutil.Eventually(t, 3*time.Second, "the first DNS answer", func() bool { return has(0) && has(1) && has(2) })

	// Node 1 fails and is detected.
	bs[1].SetStatus(500)
	testutil.Eventually(t, 3*time.Second, "node 1 unhealthy", func() bool { return c.Status(addr(1)) == Unhealthy })
	failedAt, _ := c.Target(addr(1))

	// Scale up: node 3 appears and is probed at once; node 1 stays unhealthy.
	setDNS(0, 1, 2, 3)
	testutil.Eventually(t, 3*time.Second, "node 3 probed", func() bool { return bs[3].Requests() > 0 })
	if got := c.Status(addr(1)); got != Unhealthy {
		t.Fatalf("node 1 is %v after scale-up, want unhealthy", got)
	}

	// Scale down: node 2 leaves DNS and is probed no more.
	setDNS(0, 1, 3)
	testutil.Eventually(t, 3*time.Second, "node 2 removed", func() bool { return !has(2) })
	seen := bs[2].Requests()
	before0 := bs[0].Requests()
	testutil.Eventually(t, 3*time.Second, "node 0 probed three more times", func() bool { return bs[0].Requests() >= before0+3 })
	if got := bs[2].Requests(); got > seen+1 { // at most the probe in flight at removal
		t.Fatalf("removed node 2 received %d probes after its removal", got-seen)
	}

	// Node 1 leaves DNS, recovers meanwhile, and comes back: it is
	// remembered as unhealthy until probes prove otherwise.
	setDNS(0, 3)
	testutil.Eventually(t, 3*time.Second, "node 1 removed", func() bool { return !has(1) })
	bs[1].SetStatus(200)
	setDNS(0, 1, 3)
	testutil.Eventually(t, 3*time.Second, "node 1 back", func() bool { return has(1) })
	back, _ := c.Target(addr(1))
	if back.Status != Unhealthy || !back.LastChange.Equal(failedAt.LastChange) {
		t.Fatalf("node 1 came back as %v (changed %v), want unhealthy since %v",
			back.Status, back.LastChange, failedAt.LastChange)
	}
	testutil.Eventually(t, 3*time.Second, "node 1 healthy again", func() bool { return c.Status(addr(1)) == Healthy })

	// Every status change of the whole run: node 1 down once, up once. The
	// events arrive asynchronously: wait for the last one first.
	testutil.Eventually(t, 3*time.Second, "node 1's recovery delivered", func() bool {
		return len(log.to(addr(1), Healthy)) > 0
	})
	for i := range bs {
		want := 0
		if i == 1 {
			want = 1
		}
		if n := len(log.to(addr(i), Unhealthy)); n != want {
			t.Errorf("node %d turned unhealthy %d times, want %d", i, n, want)
		}
		if n := len(log.to(addr(i), Healthy)); n != want {
			t.Errorf("node %d turned healthy %d times, want %d", i, n, want)
		}
	}
	if got, want := addrsOf(c.Targets()), []resolver.Address{addr(0), addr(1), addr(3)}; !slices.Equal(got, want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
}
