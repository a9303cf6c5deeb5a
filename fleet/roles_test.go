package fleet_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
)

// Roles tell, per address, whether this member probes it for the fleet
// (and its rank among the probers) or applies whose verdict (the prober,
// its reason, its age), and the probers as this member sees them.
func TestRolesTellWhoProbesAndWhoseVerdictApplies(t *testing.T) {
	const n = 5
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.152.1", 2, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	for _, a := range w.addrs {
		probers := w.probersOf(a)
		var ranks []int
		for _, c := range w.clients {
			r := c.role(a)
			if r.Name != upstream || r.Address != a {
				t.Fatalf("%s: role %+v of another address", c.id, r)
			}
			var seen []string
			for _, p := range r.Probers {
				seen = append(seen, p.Member)
				if p.Status != health.Healthy || !strings.HasPrefix(p.Reason, "HTTP 200") || p.Age < 0 || p.Age > 5*time.Second || p.Disagrees {
					t.Errorf("%s sees prober %+v of %v", c.id, p, a)
				}
			}
			slices.Sort(seen)
			if !slices.Equal(seen, probers) {
				t.Errorf("%s sees probers %v of %v, want %v", c.id, seen, a, probers)
			}
			switch r.Kind {
			case fleet.RoleProber:
				ranks = append(ranks, r.Rank)
			case fleet.RoleApplying:
				if r.Verdict != health.Healthy || !slices.Contains(probers, r.From) || !strings.HasPrefix(r.Reason, "HTTP 200") || r.Age > 5*time.Second {
					t.Errorf("%s applies %+v on %v", c.id, r, a)
				}
			default:
				t.Errorf("%s: role %v on %v", c.id, r.Kind, a)
			}
		}
		slices.Sort(ranks)
		if !slices.Equal(ranks, []int{1, 2, 3}) {
			t.Errorf("%v: the probers' ranks are %v", a, ranks)
		}
	}
	// A backend that fails: those that apply the fleet's verdict name the
	// prober and its reason.
	a := w.addrs[1]
	w.backends[1].SetPathStatus("/healthz", 500)
	testutil.Eventually(t, 5*time.Second, "every client holding it unhealthy", func() bool { return w.everyone(a, health.Unhealthy) })
	for _, c := range w.clients {
		r := c.role(a)
		if r.Kind == fleet.RoleApplying && (r.Verdict != health.Unhealthy || !strings.Contains(r.Reason, "HTTP 500") || r.From == "") {
			t.Errorf("%s applies %+v", c.id, r)
		}
	}
}

// Roles of a member that does not share are local; Roles lists every
// attached upstream.
func TestRolesWhileNotSharing(t *testing.T) {
	w := newWorld(t, "127.0.152.11", 3, time.Second)
	f, err := fleet.New(fleet.Config{URL: w.nats.URL(), Member: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	defer bus.Close()
	chk, err := health.NewChecker(healthConfig(time.Second), bus)
	if err != nil {
		t.Fatal(err)
	}
	chk.SetTargets(w.addrs)
	if err := f.AttachChecker(chk, bus); err != nil {
		t.Fatal(err)
	}
	roles := f.Roles()
	if len(roles) != len(w.addrs) {
		t.Fatalf("%d roles for %d addresses", len(roles), len(w.addrs))
	}
	for i, r := range roles {
		if r.Kind != fleet.RoleLocal || r.Address != w.addrs[i] || r.Name != upstream || r.Kind.String() != "local" {
			t.Errorf("role %d: %+v", i, r)
		}
	}
	if st := f.Stats(); st.Sharing || st.NotSharing != "not running" {
		t.Errorf("a fleet not running: %+v", st)
	}
}
