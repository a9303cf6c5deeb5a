package subset_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/subset"
)

// pushedOut returns an id whose subset of size 2 holds x among base, and
// loses x when extra joins: x is its second choice in base and extra
// outranks it.
func pushedOut(t *testing.T, base []resolver.Address, x, extra resolver.Address) *subset.Subset {
	t.Helper()
	for i := range 1000 {
		s, _ := subset.New(fmt.Sprintf("client-%d", i), 2)
		if slices.Contains(s.Filter(base), x) && !slices.Contains(s.Filter(append(slices.Clone(base), extra)), x) {
			return s
		}
	}
	t.Fatal("no id of 1000 has x pushed out by extra")
	return nil
}

// An address pushed out of the subset by a newcomer is remembered like any
// removed address: when the newcomer leaves, it is back with its passive
// verdict, its counters and its ejection.
func TestSubsetChangeKeepsRememberedState(t *testing.T) {
	as := addrs(4)
	base, x, extra := as[:3], as[0], as[3]
	s := pushedOut(t, base, x, extra)
	c, err := health.NewChecker(health.Config{
		Name: "api.internal",
		Active: health.Active{
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
	}, nil, s.HealthOption())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets(base)
	if len(c.Targets()) != 2 || c.Status(x) != health.Healthy {
		t.Fatalf("targets %v, x %v: want 2 targets, x healthy among them", c.Targets(), c.Status(x))
	}
	for range 5 { // the passive HTTP failure threshold
		c.ReportHTTPStatus(x, 500)
	}
	before, _ := c.Target(x)
	if before.Status != health.Unhealthy || before.Ejections != 1 {
		t.Fatalf("x after 5 passive 500s: %+v, want unhealthy, ejected once", before)
	}

	c.SetTargets(append(slices.Clone(base), extra))
	if c.Status(x) != health.Unknown || c.Status(extra) == health.Unknown {
		t.Fatalf("with the newcomer: x %v, newcomer %v; want x out of the subset, the newcomer in", c.Status(x), c.Status(extra))
	}
	if r, ok := c.Remembered(x); !ok || r.Status != health.Unhealthy {
		t.Fatalf("x out of the subset: remembered %v %+v, want its unhealthy state", ok, r)
	}

	c.SetTargets(base)
	after, ok := c.Target(x)
	if !ok {
		t.Fatal("x did not come back into the subset")
	}
	if after.Status != health.Unhealthy || after.Passive != health.Unhealthy ||
		after.PassiveCounts != before.PassiveCounts || after.Ejections != before.Ejections ||
		!after.EjectedUntil.Equal(before.EjectedUntil) {
		t.Fatalf("x back in the subset: %+v, want its state from before: %+v", after, before)
	}
}

// The same through the root package and real DNS: an Upstream with
// vigil.WithHealthOptions(s.HealthOption()) probes only its subset, stops
// probing an address pushed out by a newcomer in DNS, and when the
// newcomer leaves DNS the address is back unhealthy with its counters: it
// recovered meanwhile, yet one passing probe is not enough (2 are needed)
// where a forgotten address would have started healthy.
func TestUpstreamSubsetRemembersAcrossDNSChanges(t *testing.T) {
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.140.1"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	const name = "subset.internal"
	as := make([]resolver.Address, len(bs))
	for i, b := range bs {
		as[i] = b.Address(name)
	}
	base, x, extra := as[:3], as[0], as[3]
	s := pushedOut(t, base, x, extra)
	setDNS := func(bs ...*backendtest.Backend) {
		t.Helper()
		ips := make([]string, len(bs))
		for i, b := range bs {
			ips[i] = b.IP.String()
		}
		if err := dns.SetA(name, 1, ips...); err != nil {
			t.Fatal(err)
		}
	}
	setDNS(bs[:3]...)
	bs[0].SetPathStatus("/healthz", 500)

	u, err := vigil.New(vigil.Config{
		Name: name, Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{dns.Addr()}, MinTTL: 20 * time.Millisecond, MaxTTL: 50 * time.Millisecond},
		Health: health.Config{Active: health.Active{
			Path:      "/healthz",
			Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond},
			Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond, HTTPFailures: 1},
		}},
	}, vigil.WithHealthOptions(s.HealthOption()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	chk := u.Checker()
	testutil.Eventually(t, 5*time.Second, "x probed and unhealthy", func() bool { return chk.Status(x) == health.Unhealthy })
	if n := len(chk.Targets()); n != 2 {
		t.Fatalf("%d targets, want the subset's 2", n)
	}

	setDNS(bs...)
	testutil.Eventually(t, 5*time.Second, "x pushed out of the subset", func() bool { return chk.Status(x) == health.Unknown })
	probes := bs[0].Paths()["/healthz"]
	bs[0].SetPathStatus("/healthz", 0) // x recovers while out of the subset
	time.Sleep(200 * time.Millisecond) // four probe intervals: x must not be probed
	if got := bs[0].Paths()["/healthz"]; got != probes {
		t.Fatalf("x was probed %d times while out of the subset", got-probes)
	}

	setDNS(bs[:3]...)
	testutil.Eventually(t, 5*time.Second, "x back in the subset", func() bool { return chk.Status(x) != health.Unknown })
	if st := chk.Status(x); st != health.Unhealthy {
		t.Fatalf("x back in the subset is %v, want unhealthy: its state was forgotten", st)
	}
	testutil.Eventually(t, 5*time.Second, "x healthy after two passing probes", func() bool {
		return chk.Status(x) == health.Healthy
	})
	if got := bs[0].Paths()["/healthz"] - probes; got < 2 {
		t.Fatalf("x turned healthy after %d probes, want 2 (Healthy.Successes)", got)
	}
}
