package fleet_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
)

// A prober that leaves (its process stops: fleet member and checker) is
// replaced at once: its registration is deleted as it goes, and the next
// member in the address's ranking probes it.
func TestLeavingProberIsReplacedAtOnce(t *testing.T) {
	const n = 5
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.142.1", 3, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	probers := w.probersOf(a)
	var gone *clientRef
	for _, c := range w.clients {
		if c.id == probers[0] {
			gone = &clientRef{c}
		}
	}
	start := time.Now()
	gone.c.stop()
	testutil.Eventually(t, 5*time.Second, "another member probing in its place", func() bool {
		ps := w.probersOf(a)
		return len(ps) == fleet.DefaultProbers && !slices.Contains(ps, gone.c.id)
	})
	took := time.Since(start)
	t.Logf("%s left; %v probe %v after %v (interval %v)", gone.c.id, w.probersOf(a), a, took, interval)
	if took > interval {
		for _, c := range w.clients {
			t.Logf("%s:\n%s", c.id, c.log.String())
		}
		t.Errorf("replaced after %v, want within one interval (%v)", took, interval)
	}
	w.waitSettled(n-1, fleet.DefaultProbers)
	if rate := w.probeRate(10); rate[0] < fleet.DefaultProbers-0.5 || rate[0] > fleet.DefaultProbers+0.5 {
		t.Errorf("after the takeover %v gets %.1f probes per interval, want %d", a, rate[0], fleet.DefaultProbers)
	}
	for _, c := range w.clients {
		if c.done || !strings.Contains(c.log.String(), "member "+gone.c.id+" left") {
			continue
		}
		return // its successor logged why
	}
	t.Errorf("no member logged that %s left", gone.c.id)
}

type clientRef struct{ c *client }

// A prober that stops writing without leaving (its connection to NATS
// dies; its values stay) is replaced once its verdict is late: one
// interval after the write it missed, so within two intervals of its last
// write, and the claim's spread.
func TestSilentProberIsReplaced(t *testing.T) {
	const n = 5
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.142.11", 3, interval)
	conns := map[string]*nats.Conn{}
	for i := range n {
		c := w.addClient(fmt.Sprintf("client-%d", i))
		nc, err := nats.Connect(w.nats.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		conns[c.id] = nc
		c.join(fleet.Config{Conn: nc})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[2]
	silent := w.probersOf(a)[0]
	start := time.Now()
	conns[silent].Close() // no goodbye: the registration lasts a minute
	testutil.Eventually(t, 5*time.Second, "another member probing in its place", func() bool {
		var others []string
		for _, c := range w.sharing() {
			ps, _ := c.fleet.Probing(upstream)
			if c.id != silent && slices.Contains(ps, a) {
				others = append(others, c.id)
			}
		}
		return len(others) == fleet.DefaultProbers
	})
	took := time.Since(start)
	t.Logf("%s went silent; replaced after %v (interval %v)", silent, took, interval)
	if limit := 2*interval + interval/2 + 300*time.Millisecond; took > limit {
		t.Errorf("replaced after %v, want within %v", took, limit)
	}
	found := false
	for _, c := range w.clients {
		if strings.Contains(c.log.String(), "member "+silent+" stopped writing") {
			found = true
		}
	}
	if !found {
		for _, c := range w.clients {
			t.Logf("%s:\n%s", c.id, c.log.String())
		}
		t.Errorf("no member logged that %s stopped writing", silent)
	}
}

// A checker detached while the fleet runs leaves at once: the others take
// over its addresses, and it probes all of them itself again.
func TestDetachLeavesAtOnce(t *testing.T) {
	const n = 4
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.142.21", 2, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	id := w.probersOf(a)[0]
	var c *client
	for _, x := range w.clients {
		if x.id == id {
			c = x
		}
	}
	start := time.Now()
	if !c.fleet.Detach(upstream) {
		t.Fatal("Detach: not attached")
	}
	testutil.Eventually(t, 5*time.Second, "the others taking over", func() bool {
		ps := w.probersOf(a)
		return len(ps) == fleet.DefaultProbers && !slices.Contains(ps, id)
	})
	if took := time.Since(start); took > interval {
		t.Errorf("taken over after %v, want at once (within %v)", took, interval)
	}
	if ps, ms := c.fleet.Probing(upstream); ps != nil || ms != nil {
		t.Errorf("a detached upstream still reports probing %v among %v", ps, ms)
	}
	// Its checker probes both backends again: every interval, by itself.
	stop := countProbes(c)
	time.Sleep(3 * interval)
	probed := stop()
	for _, a := range w.addrs {
		if probed[a.String()] < 2 {
			t.Errorf("the detached checker probed %v %d times in 3 intervals, want about 3", a, probed[a.String()])
		}
	}
}

// Probers started together do not probe together: each one taking an
// address up probes first in the middle of the widest gap between the
// others' probes, so three probers of one address probe a third of an
// interval apart (each then keeps its own schedule, ±5% of jitter).
func TestProbePhasesAreSpread(t *testing.T) {
	const n = 6
	interval := 600 * time.Millisecond
	w := newWorld(t, "127.0.142.31", 1, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i))
	}
	for _, c := range w.clients { // together
		c.join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	last := map[string]time.Time{}
	var mu sync.Mutex
	for _, id := range w.probersOf(a) {
		unsubscribe := events.Subscribe(w.client(id).bus, health.ProbeTopic(upstream), func(health.ProbeResult) {
			mu.Lock()
			last[id] = time.Now()
			mu.Unlock()
		})
		defer unsubscribe()
	}
	time.Sleep(2 * interval)
	mu.Lock()
	defer mu.Unlock()
	var phases []time.Duration
	for _, at := range last {
		phases = append(phases, at.Sub(last[w.probersOf(a)[0]])%interval)
	}
	if len(phases) != fleet.DefaultProbers {
		t.Fatalf("probes of %d probers seen", len(phases))
	}
	for i, p := range phases {
		if p < 0 {
			phases[i] = p + interval
		}
	}
	slices.Sort(phases)
	closest := interval
	for i, p := range phases {
		next := interval + phases[0]
		if i+1 < len(phases) {
			next = phases[i+1]
		}
		closest = min(closest, next-p)
	}
	t.Logf("phases %v; the closest two probers probe %v apart (ideal %v)", phases, closest, interval/3)
	if closest < interval/6 {
		t.Errorf("two probers probe %v apart, want at least a sixth of an interval (%v)", closest, interval/6)
	}
}

// Members whose Config.TTL differ (deprecated: nothing is registered)
// agree on who probes each address: liveness is judged per address, by
// each prober's writes, with each reader's own intervals.
func TestMembersWithDifferentTTLsAgree(t *testing.T) {
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.142.41", 3, interval)
	for i, ttl := range []time.Duration{0, time.Second, 30 * time.Second, time.Hour} {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{TTL: ttl})
	}
	w.waitSettled(4, fleet.DefaultProbers) // settled: every member sees the same probers of every address
	time.Sleep(5 * interval)
	if !w.settled(4, fleet.DefaultProbers) {
		w.dump()
		t.Fatal("members with different TTLs no longer agree")
	}
}
