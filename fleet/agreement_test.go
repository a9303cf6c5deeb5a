package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// pathWorld is a world whose clients probe through a prober that fails
// for one client and one address (a broken path: a zone partition, a local
// firewall, a full conntrack table) and succeeds for everything else.
type pathWorld struct {
	*world
	broken atomic.Value // "client-id address-key" of the broken path
}

func newPathWorld(t *testing.T, first string, backends, n int, interval time.Duration, cfg fleet.Config) *pathWorld {
	w := &pathWorld{world: newWorld(t, first, backends, interval)}
	w.broken.Store("")
	for i := range n {
		id := fmt.Sprintf("client-%d", i)
		hc := healthConfig(interval)
		hc.Active.Unhealthy.TCPFailures = 1
		hc.Active.Prober = health.ProberFunc(func(_ context.Context, a resolver.Address) (health.ProbeOutcome, string) {
			if w.broken.Load() == id+" "+canonical(a) {
				return health.ProbeTCPFailure, "connection refused (from " + id + " only)"
			}
			return health.ProbeSuccess, "ok"
		})
		w.addClientWith(id, hc).join(cfg)
	}
	return w
}

func (w *pathWorld) breakPath(c *client, a resolver.Address) {
	w.broken.Store(c.id + " " + canonical(a))
}

// With the default settings (3 probers, a majority of 2) a member whose
// path to one backend is broken cannot take it out of the others'
// traffic: every other member holds it healthy all along. The member
// itself avoids it (its own probes say so), and it is reported: in its
// own Stats and log (outvoted, with the address), in the others' Stats,
// logs and Roles.
func TestBrokenPathIsOutvotedAndReported(t *testing.T) {
	const n = 5
	interval := 200 * time.Millisecond
	w := newPathWorld(t, "127.0.146.1", 2, n, interval, fleet.Config{})
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	broken := w.client(w.probersOf(a)[0])
	w.breakPath(broken, a)

	testutil.Eventually(t, 5*time.Second, "the broken member holding the backend unhealthy by its own probes", func() bool {
		return broken.chk.Status(a) == health.Unhealthy
	})
	// For 15 intervals, every other member holds the backend healthy.
	deadline := time.Now().Add(15 * interval)
	for time.Now().Before(deadline) {
		for _, c := range w.clients {
			if c != broken && c.chk.Status(a) != health.Healthy {
				w.dump()
				t.Fatalf("%s holds %v %v: one member's broken path took it out of its traffic", c.id, a, c.chk.Status(a))
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := broken.fleet.Stats(); st.Outvoted == 0 || st.Disagreements == 0 {
		t.Errorf("the broken member's Stats do not report it: %+v", st)
	}
	if log := broken.log.String(); !strings.Contains(log, "this member's verdicts keep disagreeing") || !strings.Contains(log, canonical(a)) {
		t.Errorf("the broken member's log does not say it is outvoted on %v:\n%s", a, log)
	}
	if r := broken.role(a); !r.Outvoted || r.Kind != fleet.RoleProber || r.Verdict != health.Healthy {
		t.Errorf("the broken member's role on %v: %+v", a, r)
	}
	reported := 0
	for _, c := range w.clients {
		if c == broken {
			continue
		}
		if c.fleet.Stats().Disagreements > 0 && strings.Contains(c.log.String(), "member="+broken.id) {
			reported++
		}
		for _, p := range c.role(a).Probers {
			if p.Member == broken.id && !p.Disagrees {
				t.Errorf("%s's roles do not flag %s: %+v", c.id, broken.id, c.role(a))
			}
		}
	}
	if reported != n-1 {
		t.Errorf("%d of %d other members reported %s", reported, n-1, broken.id)
	}
	// The other backend is untouched everywhere.
	if !w.everyone(w.addrs[1], health.Healthy) {
		t.Error("the other backend is not healthy everywhere")
	}
	// Mended, the member agrees again and is no longer flagged.
	w.broken.Store("")
	testutil.Eventually(t, 5*time.Second, "the mended member no longer flagged", func() bool {
		return !broken.role(a).Outvoted && broken.chk.Status(a) == health.Healthy
	})
}

// With QuorumAny, any prober's failure is the fleet's: a member whose
// path is broken takes the backend out of every member's traffic (what
// the default quorum prevents). The other prober takes that failure up
// once, as it appears, then its own probes make it healthy again and it
// stays so: probers that disagree do not flap.
func TestQuorumAnyTakesAnyFailureWithoutFlapping(t *testing.T) {
	const n = 4
	interval := 100 * time.Millisecond
	w := newPathWorld(t, "127.0.146.11", 1, n, interval, fleet.Config{Probers: 2, Quorum: fleet.QuorumAny})
	w.waitSettled(n, 2)
	a := w.addrs[0]
	probers := w.probersOf(a)
	w.breakPath(w.client(probers[0]), a)
	other := w.client(probers[1])
	var changes atomic.Int32
	unsubscribe := events.Subscribe(other.bus, health.StatusTopic(upstream), func(health.StatusChange) { changes.Add(1) })
	testutil.Eventually(t, 5*time.Second, "the non-probers holding it unhealthy", func() bool {
		for _, c := range w.clients {
			if c != other && c.chk.Status(a) != health.Unhealthy {
				return false
			}
		}
		return true
	})
	testutil.Eventually(t, 5*time.Second, "the other prober healthy again by its own probes", func() bool {
		return other.chk.Status(a) == health.Healthy
	})
	time.Sleep(10 * interval) // ten more probes each: it must stay healthy
	unsubscribe()
	if st := other.chk.Status(a); st != health.Healthy {
		t.Errorf("the other prober is %v again", st)
	}
	if n := changes.Load(); n > 2 {
		t.Errorf("the other prober's status changed %d times, want at most 2 (took up the failure, recovered)", n)
	}
	for _, c := range w.clients {
		if c != other && c.chk.Status(a) != health.Unhealthy {
			t.Errorf("%s holds %v, want unhealthy: a prober says so", c.id, c.chk.Status(a))
		}
	}
}

// Members declare zones; an address's probers come from distinct zones.
func TestProbersComeFromDistinctZones(t *testing.T) {
	const n = 6
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.146.21", 4, interval)
	zones := map[string]string{}
	for i := range n {
		c := w.addClient(fmt.Sprintf("client-%d", i))
		zones[c.id] = []string{"zone-a", "zone-b", "zone-c"}[i%3]
		c.join(fleet.Config{Zone: zones[c.id]})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	for _, a := range w.addrs {
		seen := map[string]bool{}
		for _, p := range w.probersOf(a) {
			seen[zones[p]] = true
		}
		if len(seen) != 3 {
			t.Errorf("%v: probers %v in zones %v, want three zones", a, w.probersOf(a), seen)
		}
		for _, p := range w.clients[0].role(a).Probers {
			if p.Zone != zones[p.Member] {
				t.Errorf("%v: %s's zone is %q in the roles, want %q", a, p.Member, p.Zone, zones[p.Member])
			}
		}
	}
}
