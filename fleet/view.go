package fleet

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/resolver"
)

// view is what one member knows of one upstream's fleet: every member's
// latest value on each address this member holds, and from them which
// addresses it probes for the fleet and the fleet's verdict on each. It is
// owned by one goroutine (the group's loop) and does no I/O.
//
// The rules, for an address X, where a value counts while it is fresh
// (heard less than its window ago, the window bounded by this member's
// own: see hear):
//
//   - The probers of X are chosen among the members whose value on X
//     counts, and this member: by rendezvous score on X (XXH64 of the
//     member id seeded with XXH64 of X), the best of each zone first, then
//     the best of the rest (choose). This member probes X when it is
//     chosen. It takes X up (writes a claim) after a delay that shrinks
//     with its score, so that of the members that would take up a free
//     place the best-scored does it first and the others see its claim
//     in time; it gives X up (deletes its value) when better members'
//     values count. Every member holding X runs the same rule, so the
//     probers converge on the best Probers holders, and a member joining
//     displaces at most one prober per address.
//   - The fleet's verdict on X comes from the chosen members' verdicts:
//     Unhealthy when at least Quorum say so, else Healthy when one says
//     so; without either, none (each member keeps what it holds). With
//     the default majority quorum one prober alone never makes X
//     unhealthy for the fleet.
//   - A chosen prober whose verdict is in the minority of the chosen
//     verdicts disagreeAfter times in a row is flagged: it probably has
//     a broken path to X.
type view struct {
	self, zone      string
	probers, quorum int
	healthy         time.Duration // this member's healthy interval: phases, claim delays
	verdictMax      time.Duration // the longest a verdict counts here
	claimMax        time.Duration // the longest a claim counts here
	spread          time.Duration // claims are spread over this
	addrs           map[resolver.Key]*address
	byStr           map[string]*address
	gen             uint64 // the current replay's number (beginReplay)
}

// viewConfig is what a view is made from: the fleet's Config and the
// checker's intervals.
type viewConfig struct {
	self, zone         string
	probers, quorum    int
	healthy, unhealthy time.Duration // probe intervals
	timeout            time.Duration // probe timeout
}

// disagreeAfter is how many verdicts in a row in the minority flag a
// prober.
const disagreeAfter = 3

// maxSkew bounds how far in the future an epoch may be: a value claiming
// an instance started later than that is not believed.
const maxSkew = time.Minute

func newView(c viewConfig) *view {
	return &view{
		self: c.self, zone: c.zone, probers: c.probers, quorum: c.quorum,
		healthy:    c.healthy,
		verdictMax: window(max(c.healthy, c.unhealthy)),
		claimMax:   claimWindow(c.healthy, c.healthy, c.timeout),
		spread:     max(c.healthy/2, 10*time.Millisecond),
		addrs:      make(map[resolver.Key]*address),
		byStr:      make(map[string]*address),
	}
}

// window returns how long a verdict of a member probing every interval
// counts: two intervals (at least the interval and 100ms). A prober
// writes after every probe, so its verdict is renewed about every
// interval; the second is room for the probes' jitter (±5%), their
// durations and a loaded machine's delays in writing and delivering it,
// so that a prober is not taken for gone (and replaced, and then
// replacing back) because it was slow once. A prober whose verdict is not
// renewed within it is late: another member takes its place one interval
// after the write it missed.
func window(interval time.Duration) time.Duration {
	return interval + max(interval, 100*time.Millisecond)
}

// claimWindow returns how long a claim counts: its delay before the first
// probe, that probe (at most timeout) and a verdict's window.
func claimWindow(delay, interval, timeout time.Duration) time.Duration {
	return delay + timeout + window(interval)
}

// address is one target of the checker, with what the fleet says of it.
type address struct {
	addr    resolver.Address
	str     string // canonical string
	seed    uint64
	entries map[string]*entry // by member, this one's included

	probe bool      // this member probes it for the fleet
	from  time.Time // ... from then on: its filter selects it (the phase it chose)
	// own: this member's checker holds a verdict its own probes agreed
	// with since it took the address up. Until then its verdict may be
	// the fleet's (applied while it did not probe, or taken up), and it
	// writes claims, not verdicts: the fleet's verdict never comes back
	// as a vote.
	own  bool
	want time.Time // when this member found it should take it up; zero: it should not
	gone string    // why the last prober that stopped counting did

	shared  health.Status // the fleet's verdict at the last decision
	applied health.Status // the verdict last applied; Unknown: none
}

// entry is one member's latest value on an address.
type entry struct {
	member, zone string
	score        uint64
	status       health.Status // Unknown: a claim
	reason       string
	epoch        int64
	rev          uint64
	at           time.Time     // when it was written, as far as this member can tell
	until        time.Time     // it counts until then
	delay        time.Duration // a claim's delay before its first probe
	seen         uint64        // the replay that last delivered it
	minority     int           // its verdicts in the minority in a row
	flagged      bool          // minority reached disagreeAfter
}

func (e *entry) fresh(now time.Time) bool { return now.Before(e.until) }

// setTargets makes as the addresses of the view: new ones are added, gone
// ones dropped with what was heard of them. It reports whether addresses
// were added, and whether the set changed.
func (v *view) setTargets(as []resolver.Address) (added, changed bool) {
	keep := make(map[resolver.Key]bool, len(as))
	for _, a := range as {
		k := a.Key()
		keep[k] = true
		if x := v.addrs[k]; x != nil {
			x.addr = a
			continue
		}
		str := rendezvous.AddressString(k)
		x := &address{addr: a, str: str, seed: rendezvous.Seed(str), entries: make(map[string]*entry)}
		v.addrs[k], v.byStr[str] = x, x
		added = true
	}
	changed = added
	for k, x := range v.addrs {
		if !keep[k] {
			delete(v.addrs, k)
			delete(v.byStr, x.str)
			changed = true
		}
	}
	return added, changed
}

// beginReplay starts a replay of the bucket (a new watch); endReplay then
// drops the values it did not deliver: removed meanwhile.
func (v *view) beginReplay() { v.gen++ }

func (v *view) endReplay() {
	for _, x := range v.addrs {
		for m, e := range x.entries {
			if e.seen < v.gen {
				delete(x.entries, m)
			}
		}
	}
}

// heard is the outcome of hear.
type heard int

const (
	heardNew     heard = iota // taken
	heardAgain                // a revision already held: nothing changed
	heardStale                // of an older instance while a newer one's counts
	heardFlagged              // taken; the member's verdicts keep disagreeing
	heardAgrees               // taken; the member's verdicts no longer disagree
)

// hear records member's value r on x, of revision rev, written at at (as
// far as this member can tell). Every duration in it is bounded by this
// member's settings: a verdict counts at most verdictMax, a claim
// claimMax, a claim's delay at most the healthy interval.
func (v *view) hear(x *address, member string, r record, rev uint64, at, now time.Time) heard {
	old := x.entries[member]
	if old != nil {
		if rev <= old.rev {
			old.seen = v.gen
			return heardAgain
		}
		if r.Epoch < old.epoch && old.fresh(now) {
			old.seen = v.gen
			return heardStale
		}
	}
	e := &entry{
		member: member, zone: r.Zone, score: rendezvous.Score(x.seed, member),
		status: r.status(), reason: r.Reason, epoch: r.Epoch, rev: rev, at: at, seen: v.gen,
	}
	bound := v.verdictMax
	if e.status == health.Unknown {
		bound = v.claimMax
		e.delay = millis(r.Delay, v.healthy)
	}
	e.until = at.Add(millis(r.Window, bound))
	if old != nil {
		e.minority, e.flagged = old.minority, old.flagged
	}
	x.entries[member] = e
	if e.status == health.Unknown || !e.fresh(now) {
		return heardNew
	}
	// Is this verdict in the minority of the chosen probers' verdicts?
	same, other, in := 0, 0, false
	for _, c := range v.chosen(x, now, true) {
		switch {
		case c.status == health.Unknown:
		case c.status == e.status:
			same++
		default:
			other++
		}
		in = in || c == e
	}
	if !in {
		return heardNew
	}
	if other > same {
		e.minority++
		if e.minority == disagreeAfter && !e.flagged {
			e.flagged = true
			return heardFlagged
		}
		return heardNew
	}
	e.minority = 0
	if e.flagged {
		e.flagged = false
		return heardAgrees
	}
	return heardNew
}

// millis returns n milliseconds, at most bound (a value read from the
// store may say anything: a huge one must not overflow into the past), and
// at least 0.
func millis(n int64, bound time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if n >= bound.Milliseconds() {
		return bound
	}
	return time.Duration(n) * time.Millisecond
}

// remove drops member's value on x: the store removed it (how says how).
// It reports whether a value was dropped.
func (v *view) remove(x *address, member string, rev uint64, how string, now time.Time) bool {
	e := x.entries[member]
	if e == nil || e.rev >= rev {
		return false
	}
	delete(x.entries, member)
	if e.fresh(now) && member != v.self {
		x.gone = "member " + member + " left: its value was " + how
	}
	return true
}

// chosen returns the members chosen to probe x among those whose value
// counts at now, in order of preference; with self, this member is a
// candidate too whatever its value.
func (v *view) chosen(x *address, now time.Time, withValues bool) []*entry {
	cands := make([]*entry, 0, len(x.entries)+1)
	for _, e := range x.entries {
		if e.fresh(now) && (withValues || e.member != v.self) {
			cands = append(cands, e)
		}
	}
	if !withValues {
		cands = append(cands, &entry{member: v.self, zone: v.zone, score: rendezvous.Score(x.seed, v.self)})
	}
	return choose(cands, v.probers)
}

// choose returns up to n of cands: by score, highest first (ties by id),
// the best of each zone first, then the best of the rest. It reorders
// cands.
func choose(cands []*entry, n int) []*entry {
	slices.SortFunc(cands, func(a, b *entry) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		return cmp.Compare(a.member, b.member)
	})
	if len(cands) <= n {
		return cands
	}
	out := make([]*entry, 0, n)
	zones := make(map[string]bool, n)
	picked := make([]bool, len(cands))
	for i, c := range cands {
		if len(out) == n {
			return out
		}
		if !zones[c.zone] {
			zones[c.zone] = true
			picked[i] = true
			out = append(out, c)
		}
	}
	for i, c := range cands {
		if len(out) == n {
			break
		}
		if !picked[i] {
			out = append(out, c)
		}
	}
	return out
}

// decision is what step decided for one address.
type decision struct {
	claim  bool          // take it up now: write a claim, probe after delay
	resume bool          // probe it again: this member's own value still counts (a new session)
	yield  bool          // give it up now: delete this member's value
	why    string        // why it takes it up or gives it up
	delay  time.Duration // for a claim: before its first probe
}

// step decides whether this member probes x, updating x; next is when
// the decision may change without anything being heard (zero: never).
func (v *view) step(x *address, now time.Time) (d decision, next time.Time) {
	cands := v.chosen(x, now, false)
	var others []*entry
	in := false
	for _, c := range cands {
		if c.member == v.self {
			in = true
		} else {
			others = append(others, c)
		}
	}
	for _, e := range x.entries {
		if e.fresh(now) {
			next = earliest(next, e.until)
		}
	}
	if x.probe && now.Before(x.from) {
		next = earliest(next, x.from)
	}
	switch {
	case x.probe && !in:
		x.probe, x.want = false, time.Time{}
		delete(x.entries, v.self) // being deleted: it no longer counts here either
		d.yield = true
		d.why = "members ranked above it probe it: " + names(others)
	case !x.probe && in:
		if own := x.entries[v.self]; own != nil && own.fresh(now) {
			x.probe, x.from, x.want, x.own = true, now, time.Time{}, false
			d.resume, d.why = true, "its own value on it still counts"
			break
		}
		if x.want.IsZero() {
			x.want = now
		}
		due := x.want.Add(v.claimDelay(x, others))
		if now.Before(due) {
			next = earliest(next, due)
			break
		}
		d.claim, d.delay = true, v.phase(others, now)
		x.probe, x.from, x.want, x.own = true, now.Add(d.delay), time.Time{}, false
		if d.delay > 0 {
			next = earliest(next, x.from)
		}
		d.why = v.claimWhy(x, others, now)
	case !in:
		x.want = time.Time{}
	}
	return d, next
}

// claimDelay returns how long this member waits before taking x up: a
// fraction of spread that shrinks as its score grows, so that of the
// members that would take up a free place the best-scored goes first;
// a spread more when its zone already probes x, so that a member of
// another zone goes before it.
func (v *view) claimDelay(x *address, others []*entry) time.Duration {
	score := rendezvous.Score(x.seed, v.self)
	d := time.Duration(float64(v.spread) * (1 - float64(score)/math.MaxUint64))
	if v.zone != "" && slices.ContainsFunc(others, func(e *entry) bool { return e.zone == v.zone }) {
		d += v.spread
	}
	return d
}

// phase returns how long after now this member should probe first so
// that its probes fall in the middle of the widest gap between the other
// probers' (assumed to probe every healthy interval from their last value,
// or from a claim's planned first probe).
func (v *view) phase(others []*entry, now time.Time) time.Duration {
	period := v.healthy
	if len(others) == 0 || period <= 0 {
		return 0
	}
	ph := make([]time.Duration, 0, len(others))
	for _, e := range others {
		p := e.at.Add(e.delay).Sub(now) % period
		if p < 0 {
			p += period
		}
		ph = append(ph, p)
	}
	slices.Sort(ph)
	best, at := time.Duration(-1), time.Duration(0)
	for i, p := range ph {
		next := period + ph[0] // the gap after the last wraps to the first
		if i+1 < len(ph) {
			next = ph[i+1]
		}
		if gap := next - p; gap > best {
			best, at = gap, p+gap/2
		}
	}
	return at % period
}

// claimWhy says why this member takes x up.
func (v *view) claimWhy(x *address, others []*entry, now time.Time) string {
	if len(others) < v.probers {
		why := strconv.Itoa(len(others)) + " of " + strconv.Itoa(v.probers) + " probers"
		var late *entry // the prober that went late last
		for _, e := range x.entries {
			if e.member != v.self && !e.fresh(now) && (late == nil || e.until.After(late.until)) {
				late = e
			}
		}
		switch {
		case late != nil && (x.gone == "" || now.Sub(late.until) < v.verdictMax):
			what := "verdict"
			if late.status == health.Unknown {
				what = "claim"
			}
			return why + ": member " + late.member + " stopped writing: its last " + what + " is " +
				now.Sub(late.at).Round(time.Millisecond).String() + " old, its window " + late.until.Sub(late.at).String()
		case x.gone != "":
			return why + ": " + x.gone
		}
		return why
	}
	return "ranked above a prober of it (the probers are now " + names(append(others, &entry{member: v.self})) + ")"
}

// names returns the members of es, comma-separated.
func names(es []*entry) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ", "
		}
		s += e.member
	}
	return s
}

// verdict returns the fleet's verdict on x at now, and the chosen
// prober it comes from: Unhealthy when at least quorum chosen verdicts
// say so, else Healthy when one does, else Unknown (nil).
func (v *view) verdict(x *address, now time.Time) (health.Status, *entry) {
	var firstU, firstH *entry
	unhealthy := 0
	for _, c := range v.chosen(x, now, true) {
		switch c.status {
		case health.Unhealthy:
			unhealthy++
			if firstU == nil {
				firstU = c
			}
		case health.Healthy:
			if firstH == nil {
				firstH = c
			}
		}
	}
	switch {
	case unhealthy >= v.quorum:
		return health.Unhealthy, firstU
	case firstH != nil:
		return health.Healthy, firstH
	}
	return health.Unknown, nil
}

// earliest returns the earlier of two times, a zero time meaning never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
