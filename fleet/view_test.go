package fleet

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testAddrs(n int) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range out {
		out[i] = resolver.Address{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)}), Port: 80, Hostname: "api"}
	}
	return out
}

// fleetViews returns one view per member m0..m(n-1), all knowing each
// other and the addresses, started at t0.
func fleetViews(n, probers int, as []resolver.Address) []*view {
	vs := make([]*view, n)
	for i := range vs {
		vs[i] = newView(fmt.Sprintf("m%d", i), probers, time.Second)
		vs[i].setTargets(as, t0)
		for j := range n {
			vs[i].register(fmt.Sprintf("m%d", j), time.Hour, 0, t0)
		}
		vs[i].rank(t0)
	}
	return vs
}

// probersOf returns the members whose view decides to probe a at now.
func probersOf(vs []*view, a resolver.Address, now time.Time) []string {
	var out []string
	for _, v := range vs {
		v.rank(now)
		if d, _ := v.decide(v.addrs[a.Key()], now); d.probe {
			out = append(out, v.self)
		}
	}
	return out
}

// Every view agrees on who probes each address: exactly r members, the
// r highest-ranked, and the load spreads over the members.
func TestViewEveryMemberAgreesOnRProbers(t *testing.T) {
	as := testAddrs(40)
	vs := fleetViews(10, 2, as)
	load := map[string]int{}
	for _, a := range as {
		ps := probersOf(vs, a, t0)
		if len(ps) != 2 {
			t.Fatalf("%v has probers %v, want 2", a, ps)
		}
		top := vs[0].addrs[a.Key()].ranking[:2]
		if !slices.Equal(sorted(ps), sorted(top)) {
			t.Fatalf("%v: probers %v, highest-ranked %v", a, ps, top)
		}
		for _, p := range ps {
			load[p]++
		}
	}
	if len(load) < 8 {
		t.Fatalf("80 probe assignments went to %d of 10 members: %v", len(load), load)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// A prober whose verdict is late (not written within its window) is
// skipped: the next member takes over, and only then.
func TestViewLateProberIsReplaced(t *testing.T) {
	as := testAddrs(1)
	a := as[0]
	vs := fleetViews(5, 2, as)
	rank := slices.Clone(vs[0].addrs[a.Key()].ranking)
	first, second, third := rank[0], rank[1], rank[2]
	probersOf(vs, a, t0) // every view decides at once: the grace periods start
	// Both probers write at t0+100ms with a 1s window.
	at := t0.Add(100 * time.Millisecond)
	for _, v := range vs {
		for i, m := range []string{first, second} {
			v.hear(a.Key(), m, heard{status: health.Healthy, epoch: 1, seq: uint64(i + 1), at: at, window: time.Second})
		}
	}
	// After the grace (1s from t0) the writers count by their verdicts.
	now := t0.Add(1050 * time.Millisecond)
	if ps := probersOf(vs, a, now); !slices.Equal(sorted(ps), sorted([]string{first, second})) {
		t.Fatalf("fresh verdicts: probers %v, want %s and %s", ps, first, second)
	}
	// second writes again; first does not.
	for _, v := range vs {
		v.hear(a.Key(), second, heard{status: health.Healthy, epoch: 1, seq: 9, at: now, window: time.Second})
	}
	now = t0.Add(1150 * time.Millisecond) // first's verdict (written at 100ms) is late
	ps := probersOf(vs, a, now)
	want := []string{first, second, third} // first still thinks it probes (it does not know it is late)
	if !slices.Equal(sorted(ps), sorted(want)) {
		t.Fatalf("first late: probers %v, want %v", ps, want)
	}
	var third_ *view
	for _, v := range vs {
		if v.self == third {
			third_ = v
		}
	}
	d, _ := third_.decide(third_.addrs[a.Key()], now)
	if !d.probe || d.why == "" {
		t.Fatalf("third's decision %+v: want to probe, saying why", d)
	}
	t.Logf("why %s probes: %s", third, d.why)
}

// A member that leaves is skipped at once by everyone.
func TestViewLeavingProberIsReplacedAtOnce(t *testing.T) {
	as := testAddrs(1)
	a := as[0]
	vs := fleetViews(4, 2, as)
	rank := slices.Clone(vs[0].addrs[a.Key()].ranking)
	var rest []*view
	for _, v := range vs {
		if v.self != rank[0] {
			v.leave(rank[0])
			rest = append(rest, v)
		}
	}
	if ps := probersOf(rest, a, t0); !slices.Equal(sorted(ps), sorted(rank[1:3])) {
		t.Fatalf("after %s left: probers %v, want %v", rank[0], ps, rank[1:3])
	}
}

// A registration that expires takes its member out of the rankings.
func TestViewExpiredMemberLeavesTheRanking(t *testing.T) {
	v := newView("m0", 2, time.Second)
	v.setTargets(testAddrs(1), t0)
	v.register("m1", time.Second, 0, t0)
	v.register("m2", 3*time.Second, 0, t0)
	v.rank(t0)
	if got := v.live; !slices.Equal(got, []string{"m0", "m1", "m2"}) {
		t.Fatalf("live %v", got)
	}
	if next := v.nextExpiry(t0); !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("next expiry %v, want t0+1s", next)
	}
	v.rank(t0.Add(1500 * time.Millisecond))
	if got := v.live; !slices.Equal(got, []string{"m0", "m2"}) {
		t.Fatalf("live after m1 expired: %v", got)
	}
	// A replayed registration already 2.5s old of a 3s TTL lasts 0.5s more.
	v.register("m3", 3*time.Second, 2500*time.Millisecond, t0)
	if d := v.peers["m3"].deadline.Sub(t0); d != 500*time.Millisecond {
		t.Fatalf("replayed registration lasts %v, want 500ms", d)
	}
}

// The shared verdict: Unhealthy if any fresh verdict of a live member says
// so; stale verdicts and verdicts of members gone do not count.
func TestViewSharedVerdict(t *testing.T) {
	a := testAddrs(1)[0]
	v := newView("m0", 2, time.Second)
	v.setTargets([]resolver.Address{a}, t0)
	for _, m := range []string{"m1", "m2", "m3"} {
		v.register(m, time.Hour, 0, t0)
	}
	v.rank(t0)
	x := v.addrs[a.Key()]
	now := t0.Add(5 * time.Second)
	v.hear(a.Key(), "m1", heard{status: health.Healthy, reason: "HTTP 200", epoch: 1, seq: 1, at: now, window: time.Second})
	v.hear(a.Key(), "m2", heard{status: health.Unhealthy, reason: "HTTP 500", epoch: 1, seq: 1, at: now, window: time.Second})
	if d, _ := v.decide(x, now); d.shared != health.Unhealthy || d.reason != "HTTP 500" || d.from != "m2" {
		t.Fatalf("one of two unhealthy: %+v", d)
	}
	// m2's verdict goes stale: m1's healthy one is the verdict.
	later := now.Add(1500 * time.Millisecond)
	v.hear(a.Key(), "m1", heard{status: health.Healthy, reason: "HTTP 200", epoch: 1, seq: 2, at: later, window: time.Second})
	if d, _ := v.decide(x, later); d.shared != health.Healthy || d.from != "m1" {
		t.Fatalf("the unhealthy verdict stale: %+v", d)
	}
	// m3 says unhealthy, then leaves: its verdict goes with it.
	v.hear(a.Key(), "m3", heard{status: health.Unhealthy, epoch: 1, seq: 1, at: later, window: time.Second})
	if d, _ := v.decide(x, later); d.shared != health.Unhealthy {
		t.Fatalf("m3 unhealthy: %+v", d)
	}
	v.leave("m3")
	v.rank(later)
	if d, _ := v.decide(x, later); d.shared != health.Healthy {
		t.Fatalf("m3 left: %+v", d)
	}
	// No fresh verdict at all: none.
	if d, _ := v.decide(x, later.Add(time.Hour)); d.shared != health.Unknown {
		t.Fatalf("all stale: %+v", d)
	}
}

// A verdict not newer than the one held is ignored, whatever its status.
func TestViewOlderVerdictIgnored(t *testing.T) {
	a := testAddrs(1)[0]
	v := newView("m0", 2, time.Second)
	v.setTargets([]resolver.Address{a}, t0)
	if !v.hear(a.Key(), "m1", heard{status: health.Healthy, epoch: 5, seq: 10, at: t0, window: time.Second}) {
		t.Fatal("first verdict refused")
	}
	for _, h := range []heard{
		{status: health.Unhealthy, epoch: 5, seq: 10}, // same version
		{status: health.Unhealthy, epoch: 5, seq: 9},  // older write
		{status: health.Unhealthy, epoch: 4, seq: 99}, // older instance
	} {
		h.at, h.window = t0, time.Second
		if v.hear(a.Key(), "m1", h) {
			t.Fatalf("verdict of version (%d, %d) accepted over (5, 10)", h.epoch, h.seq)
		}
	}
	if !v.hear(a.Key(), "m1", heard{status: health.Unhealthy, epoch: 6, seq: 1, at: t0, window: time.Second}) {
		t.Fatal("a newer instance's verdict refused")
	}
	if got := v.addrs[a.Key()].verdicts["m1"].status; got != health.Unhealthy {
		t.Fatalf("held %v", got)
	}
	if v.hear(testAddrs(2)[1].Key(), "m1", heard{epoch: 9, at: t0, window: time.Second}) {
		t.Fatal("a verdict on an address that is not a target was kept")
	}
}

// An address new to a view gives every member a grace period to write
// its first verdict: nobody else probes it meanwhile; after it, members
// that wrote nothing are skipped.
func TestViewGraceForANewAddress(t *testing.T) {
	as := testAddrs(1)
	vs := fleetViews(5, 2, nil)
	later := t0.Add(10 * time.Second)
	for _, v := range vs {
		v.setTargets(as, later)
		v.rank(later)
	}
	rank := slices.Clone(vs[0].addrs[as[0].Key()].ranking)
	probersOf(vs, as[0], later) // the address is new: decided at once
	probers := probersOf(vs, as[0], later.Add(500*time.Millisecond))
	if !slices.Equal(sorted(probers), sorted(rank[:2])) {
		t.Fatalf("within the grace: %v, want %v", probers, rank[:2])
	}
	// rank[0] never writes; rank[1] does.
	for _, v := range vs {
		v.hear(as[0].Key(), rank[1], heard{status: health.Healthy, epoch: 1, seq: 1, at: later.Add(600 * time.Millisecond), window: time.Second})
	}
	probers = probersOf(vs, as[0], later.Add(1100*time.Millisecond))
	if !slices.Equal(sorted(probers), sorted(rank[:3])) {
		t.Fatalf("after the grace: %v, want %v (rank[0] still believes it probes)", probers, rank[:3])
	}
}

// The probe filter probes what was decided, and an address the view does
// not know yet if this member is among its r highest-ranked.
func TestViewFilter(t *testing.T) {
	as := testAddrs(20)
	vs := fleetViews(5, 2, as[:10])
	for _, v := range vs {
		v.rank(t0)
		for _, x := range v.addrs {
			d, _ := v.decide(x, t0)
			x.probe = d.probe
		}
	}
	for _, a := range as[10:] { // unknown to the views
		n := 0
		for _, v := range vs {
			if v.filter(t0)(a) {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("unknown %v probed by %d members, want 2", a, n)
		}
	}
	for _, a := range as[:10] {
		for _, v := range vs {
			if got, want := v.filter(t0)(a), v.addrs[a.Key()].probe; got != want {
				t.Fatalf("%s: filter(%v) = %v, decided %v", v.self, a, got, want)
			}
		}
	}
	// A member joining makes the filter stale: unknown addresses are
	// decided by the live members, which changed.
	v := vs[0]
	_ = v.filter(t0)
	v.register("m9", time.Hour, 0, t0)
	v.rank(t0)
	if !v.stale {
		t.Fatal("a new member did not make the filter stale")
	}
	_ = v.filter(t0)
	v.setTargets(as, t0)
	if !v.stale {
		t.Fatal("new addresses did not make the filter stale")
	}
}
