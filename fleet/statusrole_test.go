package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// pageOf gets h's page as JSON, as a tool would.
func pageOf(t *testing.T, h http.Handler) statuspage.Page {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p statuspage.Page
	if err := json.NewDecoder(rec.Body).Decode(&p); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("the page: %d %v", rec.Code, err)
	}
	return p
}

// The status page of each member's upstream, wired with one line,
// WithRoles(f.StatusRole), shows every address's fleet role in its JSON:
// local before the fleet runs; then prober, ranked 1 to 3, on the three
// members that probe it for the fleet and follower of one of those on the
// fourth; and on a member whose path to an address is broken, a prober that
// disagrees, while the others still follow a healthy verdict.
func TestStatusPageShowsFleetRoles(t *testing.T) {
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
	// No backend: the probes are a function, failing only on the broken path.
	if err := dns.SetA(upstream, 1, "127.0.154.1", "127.0.154.2", "127.0.154.3"); err != nil {
		t.Fatal(err)
	}
	var broken atomic.Value // "member address" of the broken path
	broken.Store("")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2*n)
	running := 0
	defer func() {
		cancel()
		for range running {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	var ids []string
	var fleets []*fleet.Fleet
	var pages []http.Handler
	for i := range n {
		id := fmt.Sprintf("pod-%d", i)
		ids = append(ids, id)
		hc := healthConfig(interval)
		hc.Active.Unhealthy.TCPFailures = 1
		hc.Active.Prober = health.ProberFunc(func(_ context.Context, a resolver.Address) (health.ProbeOutcome, string) {
			if broken.Load() == id+" "+a.IP.String() {
				return health.ProbeTCPFailure, "no route to host"
			}
			return health.ProbeSuccess, "ok"
		})
		u, err := vigil.New(vigil.Config{Name: upstream, Port: 8080, Health: hc,
			Resolver: resolver.Config{Servers: []string{dns.Addr()}, MinTTL: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := fleet.New(fleet.Config{URL: ns.URL(), Member: id})
		if err == nil {
			err = f.Attach(u)
		}
		if err != nil {
			t.Fatal(err)
		}
		page, err := statuspage.New(statuspage.Of(u), statuspage.Config{}, statuspage.WithRoles(f.StatusRole))
		if err != nil {
			t.Fatal(err)
		}
		fleets, pages = append(fleets, f), append(pages, page)
		go func() { done <- u.Run(ctx) }()
		running++
	}
	// roles returns each member's roles by address, from its page.
	roles := func() []map[string]*statuspage.FleetRole {
		var out []map[string]*statuspage.FleetRole
		for _, h := range pages {
			m := map[string]*statuspage.FleetRole{}
			for _, up := range pageOf(t, h).Upstreams {
				for _, a := range up.Addresses {
					m[a.Address] = a.Fleet
				}
			}
			out = append(out, m)
		}
		return out
	}
	var last []map[string]*statuspage.FleetRole
	eventually := func(what string, cond func(rs []map[string]*statuspage.FleetRole) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for last = roles(); !cond(last); last = roles() {
			if time.Now().After(deadline) {
				for i, m := range last {
					for a, r := range m {
						t.Logf("%s %s: %+v", ids[i], a, r)
					}
				}
				t.Fatalf("the pages never showed %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	addrs := []string{"127.0.154.1:8080", "127.0.154.2:8080", "127.0.154.3:8080"}

	eventually("every address local on every member before the fleet runs", func(rs []map[string]*statuspage.FleetRole) bool {
		for _, m := range rs {
			for _, a := range addrs {
				if r := m[a]; r == nil || r.Kind != "local" || r.Rank != 0 || r.Member != "" || r.Disagrees {
					return false
				}
			}
		}
		return true
	})
	for _, f := range fleets {
		go func() { done <- f.Run(ctx) }()
		running++
	}
	// probers returns the members whose page shows a as a prober, by rank.
	probers := func(rs []map[string]*statuspage.FleetRole, a string) []string {
		by := map[int]string{}
		for i, m := range rs {
			if r := m[a]; r != nil && r.Kind == "prober" {
				by[r.Rank] = ids[i]
			}
		}
		if len(by) != fleet.DefaultProbers || by[1] == "" || by[2] == "" || by[3] == "" {
			return nil
		}
		return []string{by[1], by[2], by[3]}
	}
	eventually("three probers ranked 1 to 3 per address, and a follower of one of them", func(rs []map[string]*statuspage.FleetRole) bool {
		for _, a := range addrs {
			ps := probers(rs, a)
			if ps == nil {
				return false
			}
			for _, m := range rs {
				r := m[a]
				if r.Kind == "follower" && (!slices.Contains(ps, r.Member) || r.Reason != "ok" || r.AgeMs < 0 || r.Disagrees) {
					return false
				}
			}
		}
		return true
	})
	for i, f := range fleets { // the page says what Probing says
		mine, _ := f.Probing(upstream)
		for _, a := range addrs {
			isProber := slices.ContainsFunc(mine, func(x resolver.Address) bool { return netip.AddrPortFrom(x.IP, x.Port).String() == a })
			if got := last[i][a].Kind; (got == "prober") != isProber {
				t.Errorf("%s's page shows %s as %q; Probing says prober: %v", ids[i], a, got, isProber)
			}
		}
	}

	// The rank-1 prober of the first address loses its path to it.
	a := addrs[0]
	bad := probers(last, a)[0]
	b := slices.Index(ids, bad)
	broken.Store(bad + " 127.0.154.1")
	eventually(bad+" shown as a prober that disagrees, the others following a healthy verdict", func(rs []map[string]*statuspage.FleetRole) bool {
		for i, m := range rs {
			r := m[a]
			switch {
			case i == b && (r.Kind != "prober" || !r.Disagrees):
				return false
			case i != b && (r.Disagrees || r.Kind == "follower" && (r.Member == bad || r.Reason != "ok")):
				return false
			}
		}
		return true
	})
	for i, h := range pages {
		for _, up := range pageOf(t, h).Upstreams {
			for _, x := range up.Addresses {
				want := "healthy"
				if x.Address == a && i == b {
					want = "unhealthy" // by its own probes
				}
				if x.Status != want {
					t.Errorf("%s's page shows %s %s, want %s", ids[i], x.Address, x.Status, want)
				}
			}
		}
	}
}

// Role and StatusRole read one address's snapshot: a page of 100
// addresses makes 100 look-ups, each allocating at most its probers'
// list, not 100 lists of every role. Names are normalized; an upstream
// not attached, or an address it does not hold, has no role.
func TestStatusRoleLooksUpOneAddress(t *testing.T) {
	const m = 100
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	hc := healthConfig(time.Second)
	hc.Active.Prober = health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) {
		return health.ProbeSuccess, "ok"
	})
	bus := events.New()
	defer bus.Close()
	chk, err := health.NewChecker(hc, bus)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []resolver.Address
	for i := range m {
		addrs = append(addrs, resolver.Address{IP: netip.AddrFrom4([4]byte{127, 0, 155, byte(i + 1)}), Port: 80, Hostname: upstream})
	}
	chk.SetTargets(addrs)
	f, err := fleet.New(fleet.Config{URL: ns.URL(), Member: "alone"})
	if err == nil {
		err = f.AttachChecker(chk, bus)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := f.StatusRole("API.Fleet.Test.", addrs[0]); !ok || r.Kind != statuspage.RoleLocal {
		t.Errorf("before Run: %+v %v, want local", r, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	defer func() { cancel(); <-done; <-done }()
	go func() { _ = chk.Run(ctx); done <- struct{}{} }()
	go func() { _ = f.Run(ctx); done <- struct{}{} }()
	testutil.Eventually(t, 20*time.Second, "the lone member probing all 100 addresses for the fleet", func() bool {
		for _, a := range addrs {
			if r, ok := f.StatusRole(upstream, a); !ok || r.Kind != statuspage.RoleProber || r.Rank != 1 {
				return false
			}
		}
		return true
	})
	if r, ok := f.Role(upstream, addrs[7]); !ok || r.Address != addrs[7] || r.Kind != fleet.RoleProber || len(r.Probers) != 1 || r.Probers[0].Member != "alone" {
		t.Errorf("Role: %+v %v", r, ok)
	}
	other := resolver.Address{IP: netip.MustParseAddr("127.0.156.1"), Port: 80, Hostname: upstream}
	for _, c := range []struct {
		name string
		a    resolver.Address
	}{{"other.fleet.test", addrs[0]}, {upstream, other}} {
		if r, ok := f.StatusRole(c.name, c.a); ok {
			t.Errorf("%s %v: role %+v, want none", c.name, c.a, r)
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, a := range addrs {
			f.StatusRole(upstream, a)
		}
	})
	if perCall := allocs / m; perCall > 2 {
		t.Errorf("StatusRole allocates %.1f times per address of %d: it does not read one address's snapshot", perCall, m)
	}
}
