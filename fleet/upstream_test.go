package fleet_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Upstreams following DNS share through Attach: each backend is probed by
// r of them, a failure reaches all, and a backend that DNS adds is probed
// by r of them too, not by every one.
func TestUpstreamsShareThroughAttach(t *testing.T) {
	const n = 4
	interval := 200 * time.Millisecond
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.145.1"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	const name = "api.upstream.test"
	setDNS := func(bs []*backendtest.Backend) {
		var ips []string
		for _, b := range bs {
			ips = append(ips, b.IP.String())
		}
		if err := dns.SetA(name, 1, ips...); err != nil {
			t.Fatal(err)
		}
	}
	setDNS(bs[:3])

	hc := healthConfig(interval)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ups []*vigil.Upstream
	var fleets []*fleet.Fleet
	done := make(chan error, 2*n)
	for i := range n {
		u, err := vigil.New(vigil.Config{
			Name: name, Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{dns.Addr()}, MinTTL: 20 * time.Millisecond, MaxTTL: 50 * time.Millisecond},
			Health:   hc,
		})
		if err != nil {
			t.Fatal(err)
		}
		f, err := fleet.New(fleet.Config{URL: ns.URL(), Member: fmt.Sprintf("pod-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Attach(u); err != nil {
			t.Fatal(err)
		}
		ups, fleets = append(ups, u), append(fleets, f)
		go func() { done <- u.Run(ctx) }()
		go func() { done <- f.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range 2 * n {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	probers := func(a resolver.Address) int {
		k := 0
		for _, f := range fleets {
			ps, _ := f.Probing(name)
			for _, p := range ps {
				if p.Key() == a.Key() {
					k++
				}
			}
		}
		return k
	}
	settled := func(bs []*backendtest.Backend) func() bool {
		return func() bool {
			for _, f := range fleets {
				if !f.Sharing() {
					return false
				}
			}
			for _, b := range bs {
				if probers(b.Address(name)) != fleet.DefaultProbers {
					return false
				}
			}
			return true
		}
	}
	testutil.Eventually(t, 20*time.Second, "3 probers per backend", settled(bs[:3]))

	setDNS(bs) // a fourth backend
	testutil.Eventually(t, 20*time.Second, "3 probers for the newcomer too", settled(bs))
	before := bs[3].Paths()["/healthz"]
	time.Sleep(10 * interval)
	if got := bs[3].Paths()["/healthz"] - before; got > fleet.DefaultProbers*10+3 {
		t.Errorf("the newcomer got %d probes in 10 intervals, want about %d (%d per interval)", got, fleet.DefaultProbers*10, fleet.DefaultProbers)
	}

	bs[2].SetPathStatus("/healthz", 500)
	testutil.Eventually(t, 5*time.Second, "every upstream holding the failed backend unhealthy", func() bool {
		for _, u := range ups {
			if u.Checker().Status(bs[2].Address(name)) != health.Unhealthy {
				return false
			}
		}
		return true
	})
}
