package fleet

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/resolver"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const simInterval = time.Second

func testAddrs(n int) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range out {
		out[i] = resolver.Address{IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(1 + i)}), Port: 80, Hostname: "api"}
	}
	return out
}

func testView(self, zone string, probers, quorum int) *view {
	return newView(viewConfig{self: self, zone: zone, probers: probers, quorum: quorum,
		healthy: simInterval, unhealthy: simInterval, timeout: simInterval / 2})
}

// sim is a fleet of views exchanging values instantly, in one goroutine:
// the rules of view.go without NATS. Every member probes every interval
// from the phase it chose, and every probe finds the backend healthy
// unless verdicts says otherwise.
type sim struct {
	t       *testing.T
	now     time.Time
	views   map[string]*view
	order   []string // members, in the order they joined
	rev     uint64
	next    map[string]map[resolver.Key]time.Time // each member's next probe of each address it probes
	verdict func(member string, a resolver.Address) health.Status
	claims  int // claims written
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, now: t0, views: map[string]*view{}, next: map[string]map[resolver.Key]time.Time{},
		verdict: func(string, resolver.Address) health.Status { return health.Healthy }}
}

// join adds a member holding as.
func (s *sim) join(v *view, as []resolver.Address) {
	v.setTargets(as)
	v.beginReplay()
	// It reads what the others wrote: their latest values.
	for _, o := range s.order {
		for _, ox := range s.views[o].addrs {
			if x := v.byStr[ox.str]; x != nil {
				for m, e := range ox.entries {
					if m == o {
						v.hear(x, m, recordOf(e, ox.str), e.rev, e.at, s.now)
					}
				}
			}
		}
	}
	v.endReplay()
	s.views[v.self] = v
	s.order = append(s.order, v.self)
	s.next[v.self] = map[resolver.Key]time.Time{}
}

// leave removes a member: its values are deleted.
func (s *sim) leave(member string) {
	v := s.views[member]
	delete(s.views, member)
	s.order = slices.DeleteFunc(s.order, func(m string) bool { return m == member })
	for _, x := range v.addrs {
		if x.probe {
			s.publishRemoval(member, x.str)
		}
	}
}

// silence stops a member without deleting its values (a crash).
func (s *sim) silence(member string) {
	delete(s.views, member)
	s.order = slices.DeleteFunc(s.order, func(m string) bool { return m == member })
}

func recordOf(e *entry, addr string) record {
	st := statusClaim
	switch e.status {
	case health.Healthy:
		st = statusHealthy
	case health.Unhealthy:
		st = statusUnhealthy
	}
	return record{V: FormatVersion, Member: e.member, Zone: e.zone, Address: addr, Status: st, Reason: e.reason,
		Epoch: e.epoch, Window: e.until.Sub(e.at).Milliseconds(), Delay: e.delay.Milliseconds()}
}

func (s *sim) publish(member, addr string, r record) {
	s.rev++
	r.V, r.Member, r.Address, r.Epoch = FormatVersion, member, addr, 1
	r.Zone = s.views[member].zone
	for _, o := range s.order {
		if x := s.views[o].byStr[addr]; x != nil {
			s.views[o].hear(x, member, r, s.rev, s.now, s.now)
		}
	}
}

func (s *sim) publishRemoval(member, addr string) {
	s.rev++
	for _, o := range s.order {
		if x := s.views[o].byStr[addr]; x != nil {
			s.views[o].remove(x, member, s.rev, "deleted", s.now)
		}
	}
}

// run advances the clock by d in steps of 5ms, every member deciding
// every address at every step.
func (s *sim) run(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); s.now = s.now.Add(5 * time.Millisecond) {
		for _, m := range s.order {
			v := s.views[m]
			for _, x := range v.addrs {
				dec, _ := v.step(x, s.now)
				k := x.addr.Key()
				switch {
				case dec.claim:
					s.claims++
					w := claimWindow(dec.delay, simInterval, simInterval/2)
					s.publish(m, x.str, record{Status: statusClaim, Window: w.Milliseconds(), Delay: dec.delay.Milliseconds()})
					s.next[m][k] = x.from
				case dec.resume:
					s.next[m][k] = s.now
				case dec.yield:
					s.publishRemoval(m, x.str)
					delete(s.next[m], k)
				}
				if at, ok := s.next[m][k]; ok && !s.now.Before(at) {
					st := s.verdict(m, x.addr)
					s.publish(m, x.str, record{Status: statusString(st), Window: window(simInterval).Milliseconds()})
					s.next[m][k] = at.Add(simInterval)
				}
			}
		}
	}
}

// probers returns the members that probe a, sorted.
func (s *sim) probers(a resolver.Address) []string {
	var out []string
	for _, m := range s.order {
		if x := s.views[m].addrs[a.Key()]; x != nil && x.probe {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// best returns the members choose prefers for a among members, sorted.
func best(a resolver.Address, members []string, zones map[string]string, n int) []string {
	seed := rendezvous.Seed(rendezvous.AddressString(a.Key()))
	var cands []*entry
	for _, m := range members {
		cands = append(cands, &entry{member: m, zone: zones[m], score: rendezvous.Score(seed, m)})
	}
	var out []string
	for _, e := range choose(cands, n) {
		out = append(out, e.member)
	}
	slices.Sort(out)
	return out
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i)
	}
	return out
}

// Members started together settle on exactly r probers per address, the r
// best-scored: every member runs the same rule on the same values.
func TestViewProbersSettleOnTheBestScored(t *testing.T) {
	as := testAddrs(20)
	s := newSim(t)
	ms := members(10)
	for _, m := range ms {
		s.join(testView(m, "", 3, 2), as)
	}
	s.run(3 * simInterval)
	load := map[string]int{}
	for _, a := range as {
		got, want := s.probers(a), best(a, ms, nil, 3)
		if !slices.Equal(got, want) {
			t.Fatalf("%v: probers %v, want the best-scored %v", a, got, want)
		}
		for _, p := range got {
			load[p]++
		}
	}
	if len(load) < 8 {
		t.Errorf("60 places went to %d of 10 members: %v", len(load), load)
	}
	// Claims are staggered by score: few more than the 60 places.
	if s.claims > 60+20 {
		t.Errorf("%d claims for 60 places: the claims are not staggered", s.claims)
	}
	t.Logf("%d claims for 60 places", s.claims)
}

// A member that joins displaces at most one prober per address, and only
// where it scores among the best; the fleet then probes with exactly r.
func TestViewJoiningMemberDisplacesAtMostOne(t *testing.T) {
	as := testAddrs(30)
	s := newSim(t)
	ms := members(6)
	for _, m := range ms {
		s.join(testView(m, "", 3, 2), as)
	}
	s.run(3 * simInterval)
	before := map[resolver.Key][]string{}
	for _, a := range as {
		before[a.Key()] = s.probers(a)
	}
	s.join(testView("newcomer", "", 3, 2), as)
	s.run(3 * simInterval)
	took := 0
	for _, a := range as {
		after := s.probers(a)
		if want := best(a, append(slices.Clone(ms), "newcomer"), nil, 3); !slices.Equal(after, want) {
			t.Fatalf("%v: probers %v, want %v", a, after, want)
		}
		gone := 0
		for _, p := range before[a.Key()] {
			if !slices.Contains(after, p) {
				gone++
			}
		}
		if gone > 1 {
			t.Fatalf("%v: %d probers displaced (%v → %v)", a, gone, before[a.Key()], after)
		}
		if slices.Contains(after, "newcomer") {
			took++
		}
	}
	if took == 0 || took == len(as) {
		t.Fatalf("the newcomer probes %d of %d addresses", took, len(as))
	}
}

// A member that leaves (its values deleted) is replaced by the next-best
// member at once; one that stops writing (a crash) once its verdict is
// late: one window after it.
func TestViewReplacesLeavingAndSilentProbers(t *testing.T) {
	as := testAddrs(1)
	a := as[0]
	s := newSim(t)
	ms := members(6)
	for _, m := range ms {
		s.join(testView(m, "", 3, 2), as)
	}
	s.run(3 * simInterval)
	first := s.probers(a)
	s.leave(first[0])
	rest := slices.DeleteFunc(slices.Clone(ms), func(m string) bool { return m == first[0] })
	s.run(simInterval / 2) // the next-best claims within the spread
	if got, want := s.probers(a), best(a, rest, nil, 3); !slices.Equal(got, want) {
		t.Fatalf("after %s left: probers %v, want %v", first[0], got, want)
	}

	silent := s.probers(a)[0]
	s.silence(silent)
	s.run(simInterval / 2)
	if got := s.probers(a); len(got) != 2 {
		t.Fatalf("%s silent for half an interval: probers %v, want the 2 others still alone", silent, got)
	}
	s.run(window(simInterval) + simInterval)
	rest = slices.DeleteFunc(rest, func(m string) bool { return m == silent })
	if got, want := s.probers(a), best(a, rest, nil, 3); !slices.Equal(got, want) {
		t.Fatalf("after %s went silent: probers %v, want %v", silent, got, want)
	}
	x := s.views[rest[0]].addrs[a.Key()]
	if why := s.views[rest[0]].claimWhy(x, nil, s.now); why == "" {
		t.Fatal("no reason to take it up")
	}
}

// Probers are taken from distinct zones where members of several hold the
// address: three zones of three members give every address one prober per
// zone, though rendezvous scores alone would often pick two of one zone.
func TestViewProbersSpreadOverZones(t *testing.T) {
	as := testAddrs(30)
	s := newSim(t)
	zones := map[string]string{}
	ms := members(9)
	for i, m := range ms {
		zones[m] = []string{"a", "b", "c"}[i%3]
		s.join(testView(m, zones[m], 3, 2), as)
	}
	s.run(4 * simInterval)
	sameZone := 0
	for _, a := range as {
		ps := s.probers(a)
		got := map[string]bool{}
		for _, p := range ps {
			got[zones[p]] = true
		}
		if len(ps) != 3 || len(got) != 3 {
			t.Fatalf("%v: probers %v in zones %v, want one per zone", a, ps, got)
		}
		if byScore := best(a, ms, nil, 3); len(map[string]bool{zones[byScore[0]]: true, zones[byScore[1]]: true, zones[byScore[2]]: true}) < 3 {
			sameZone++
		}
	}
	if sameZone == 0 {
		t.Fatal("rendezvous scores alone put every address's probers in three zones: the test shows nothing")
	}
	t.Logf("%d of %d addresses would have had two probers in one zone by score alone", sameZone, len(as))
}

// choose takes the best-scored member of each zone first, then the best of
// the rest; without zones, the best-scored.
func TestChoose(t *testing.T) {
	e := func(m, z string, score uint64) *entry { return &entry{member: m, zone: z, score: score} }
	for _, tc := range []struct {
		cands []*entry
		want  []string
	}{
		{[]*entry{e("a", "", 5), e("b", "", 9), e("c", "", 7), e("d", "", 1)}, []string{"b", "c", "a"}},
		{[]*entry{e("a", "x", 9), e("b", "x", 8), e("c", "x", 7), e("d", "y", 1)}, []string{"a", "d", "b"}},
		{[]*entry{e("a", "x", 9), e("b", "y", 8), e("c", "z", 7), e("d", "w", 6)}, []string{"a", "b", "c"}},
		{[]*entry{e("a", "x", 9), e("b", "x", 8)}, []string{"a", "b"}},
		{[]*entry{e("b", "", 5), e("a", "", 5), e("c", "", 5), e("d", "", 5)}, []string{"a", "b", "c"}}, // ties by id
	} {
		var got []string
		for _, c := range choose(tc.cands, 3) {
			got = append(got, c.member)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("choose: %v, want %v", got, tc.want)
		}
	}
}

// The fleet's verdict needs Quorum unhealthy verdicts among the chosen
// probers: with the default majority, one prober alone cannot make an
// address unhealthy; with QuorumAny it can. Without a quorum and without a
// healthy verdict there is none, and claims do not vote.
func TestViewVerdictNeedsAQuorum(t *testing.T) {
	a := testAddrs(1)[0]
	H, U, C := statusHealthy, statusUnhealthy, statusClaim
	for _, tc := range []struct {
		quorum int
		values []string
		want   health.Status
	}{
		{2, []string{U, H, H}, health.Healthy},
		{2, []string{U, U, H}, health.Unhealthy},
		{2, []string{U, U, U}, health.Unhealthy},
		{2, []string{U}, health.Unknown},
		{2, []string{U, C}, health.Unknown},
		{2, []string{U, H}, health.Healthy},
		{2, []string{C, C}, health.Unknown},
		{1, []string{U, H, H}, health.Unhealthy},
		{1, []string{H, H}, health.Healthy},
		{3, []string{U, U, H}, health.Healthy},
	} {
		v := testView("self", "", 3, tc.quorum)
		v.setTargets([]resolver.Address{a})
		x := v.addrs[a.Key()]
		for i, st := range tc.values {
			v.hear(x, fmt.Sprintf("m%d", i), record{V: FormatVersion, Status: st, Reason: st, Epoch: 1, Window: 1000}, uint64(i+1), t0, t0)
		}
		got, from := v.verdict(x, t0)
		if got != tc.want {
			t.Errorf("quorum %d, values %v: %v, want %v", tc.quorum, tc.values, got, tc.want)
		}
		if got != health.Unknown && (from == nil || from.status != got) {
			t.Errorf("quorum %d, values %v: from %+v", tc.quorum, tc.values, from)
		}
	}
}

// Everything read is bounded by the reader's own settings: a verdict
// counts at most its window, a claim at most its own, a claim's delay at
// most an interval; a value removed no longer counts, and a replay that no
// longer delivers a value drops it.
func TestViewBoundsWhatItReads(t *testing.T) {
	a := testAddrs(1)[0]
	v := testView("self", "", 3, 2)
	v.setTargets([]resolver.Address{a})
	x := v.addrs[a.Key()]
	hour := time.Hour.Milliseconds()
	v.hear(x, "forger", record{V: FormatVersion, Status: statusUnhealthy, Epoch: 1, Window: hour}, 1, t0, t0)
	v.hear(x, "squatter", record{V: FormatVersion, Status: statusClaim, Epoch: 1, Window: hour, Delay: hour}, 2, t0, t0)
	if e := x.entries["forger"]; e.until.Sub(t0) != v.verdictMax || v.verdictMax != window(simInterval) {
		t.Errorf("a verdict of a 1h window counts %v, want this member's window %v", e.until.Sub(t0), window(simInterval))
	}
	if e := x.entries["squatter"]; e.until.Sub(t0) != v.claimMax || e.delay != simInterval {
		t.Errorf("a claim of a 1h window and delay counts %v with delay %v, want %v and %v", e.until.Sub(t0), e.delay, v.claimMax, simInterval)
	}
	if got := len(v.chosen(x, t0.Add(v.claimMax), true)); got != 0 {
		t.Errorf("%d values still count after the longest bound", got)
	}
	v.hear(x, "forger", record{V: FormatVersion, Status: statusUnhealthy, Epoch: 1, Window: hour}, 3, t0, t0)
	if !v.remove(x, "forger", 4, "deleted", t0) || x.entries["forger"] != nil {
		t.Error("a removed value is still held")
	}
	if v.remove(x, "squatter", 1, "deleted", t0) {
		t.Error("a removal older than the value removed it")
	}
	v.beginReplay()
	v.hear(x, "other", record{V: FormatVersion, Status: statusHealthy, Epoch: 1, Window: 1000}, 5, t0, t0)
	v.endReplay()
	if x.entries["squatter"] != nil || x.entries["other"] == nil {
		t.Errorf("after a replay without it, the squatter's claim is still held: %v", x.entries)
	}
}

// A value of an older instance of a member does not replace a newer
// instance's while that one counts; a revision already held changes
// nothing.
func TestViewIgnoresOlderInstances(t *testing.T) {
	a := testAddrs(1)[0]
	v := testView("self", "", 3, 2)
	v.setTargets([]resolver.Address{a})
	x := v.addrs[a.Key()]
	r := func(epoch int64, st string) record {
		return record{V: FormatVersion, Status: st, Epoch: epoch, Window: 1000}
	}
	if got := v.hear(x, "m", r(5, statusHealthy), 10, t0, t0); got != heardNew {
		t.Fatalf("first value: %v", got)
	}
	if got := v.hear(x, "m", r(5, statusUnhealthy), 10, t0, t0); got != heardAgain {
		t.Errorf("same revision: %v", got)
	}
	if got := v.hear(x, "m", r(4, statusUnhealthy), 11, t0, t0); got != heardStale || x.entries["m"].status != health.Healthy {
		t.Errorf("older instance's value while the newer counts: %v, held %v", got, x.entries["m"].status)
	}
	later := t0.Add(2 * window(simInterval))
	if got := v.hear(x, "m", r(4, statusUnhealthy), 12, later, later); got != heardNew {
		t.Errorf("older instance's value once the newer's is late: %v", got)
	}
}

// A prober whose verdicts are in the minority of the probers' several
// times in a row is flagged once, and unflagged when it agrees again.
func TestViewFlagsAProberThatKeepsDisagreeing(t *testing.T) {
	a := testAddrs(1)[0]
	v := testView("self", "", 3, 2)
	v.setTargets([]resolver.Address{a})
	x := v.addrs[a.Key()]
	rev := uint64(0)
	say := func(m, st string) heard {
		rev++
		return v.hear(x, m, record{V: FormatVersion, Status: st, Epoch: 1, Window: 1000}, rev, t0, t0)
	}
	say("good-1", statusHealthy)
	say("good-2", statusHealthy)
	var got []heard
	for range disagreeAfter + 2 {
		got = append(got, say("broken", statusUnhealthy))
		say("good-1", statusHealthy)
	}
	want := []heard{heardNew, heardNew, heardFlagged, heardNew, heardNew}
	if !slices.Equal(got, want) {
		t.Fatalf("the broken member's verdicts: %v, want %v", got, want)
	}
	if !x.entries["broken"].flagged || x.entries["good-1"].flagged {
		t.Fatal("flags")
	}
	if got := say("broken", statusHealthy); got != heardAgrees || x.entries["broken"].flagged {
		t.Fatalf("agreeing again: %v", got)
	}
	// Two against one the other way: the lone healthy one is the odd one.
	for range disagreeAfter {
		say("good-1", statusUnhealthy)
		say("good-2", statusUnhealthy)
		say("broken", statusHealthy)
	}
	if !x.entries["broken"].flagged {
		t.Fatal("the lone healthy verdict was not flagged")
	}
}

// A member taking an address up probes first in the middle of the widest
// gap between the other probers' probes.
func TestViewPhaseFallsInTheWidestGap(t *testing.T) {
	v := testView("self", "", 3, 2)
	I := simInterval
	at := func(d time.Duration) *entry { return &entry{at: t0.Add(d)} }
	for _, tc := range []struct {
		others []*entry
		want   time.Duration
	}{
		{nil, 0},
		{[]*entry{at(0)}, I / 2},
		{[]*entry{at(-I / 10)}, I/2 - I/10},
		{[]*entry{at(0), at(I / 2)}, I / 4},
		{[]*entry{at(0), at(I / 10)}, I/10 + (I-I/10)/2},
		{[]*entry{{at: t0, delay: I / 2}}, 0}, // a claim probing first in half an interval
	} {
		if got := v.phase(tc.others, t0); got != tc.want {
			t.Errorf("others at %v: phase %v, want %v", tc.others, got, tc.want)
		}
	}
}

// A member's claim waits less the higher it scores, and a spread more
// when its zone already probes the address.
func TestViewClaimDelay(t *testing.T) {
	a := testAddrs(1)[0]
	var vs []*view
	for _, m := range members(20) {
		v := testView(m, "z1", 3, 2)
		v.setTargets([]resolver.Address{a})
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(p, q *view) int {
		return -cmpUint(rendezvous.Score(p.addrs[a.Key()].seed, p.self), rendezvous.Score(q.addrs[a.Key()].seed, q.self))
	})
	var prev time.Duration
	for i, v := range vs {
		d := v.claimDelay(v.addrs[a.Key()], nil)
		if d < 0 || d > v.spread || i > 0 && d < prev {
			t.Fatalf("rank %d: delay %v after %v (spread %v)", i, d, prev, v.spread)
		}
		prev = d
	}
	v := vs[0]
	x := v.addrs[a.Key()]
	if d := v.claimDelay(x, []*entry{{zone: "z1"}}); d < v.spread {
		t.Errorf("with its zone probing already: %v, want at least a spread (%v)", d, v.spread)
	}
	if d := v.claimDelay(x, []*entry{{zone: "z2"}}); d > v.spread {
		t.Errorf("with another zone probing: %v, want within a spread", d)
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// A prober whose own value still counts when a session starts (the
// replay shows it) takes its addresses up again at once, without a claim.
func TestViewResumesItsOwnAddresses(t *testing.T) {
	a := testAddrs(1)[0]
	v := testView("self", "", 3, 2)
	v.setTargets([]resolver.Address{a})
	x := v.addrs[a.Key()]
	v.hear(x, "self", record{V: FormatVersion, Status: statusHealthy, Epoch: 1, Window: 2000}, 1, t0, t0)
	d, _ := v.step(x, t0.Add(100*time.Millisecond))
	if !d.resume || d.claim || !x.probe {
		t.Fatalf("decision %+v, probe %v: want to resume", d, x.probe)
	}
}
