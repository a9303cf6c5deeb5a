package fleet

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/resolver"
)

// view is what one member knows of one upstream's fleet: the other
// members, every member's verdicts on the addresses this member holds,
// and, from them, which addresses it probes and which verdicts it applies.
// It is owned by one goroutine (the group's loop) and does no I/O.
//
// The rules, for an address X, with the live members (self included)
// ranked by rendezvous score on X:
//
//   - Walking the ranking from the top, a member counts as one of X's
//     probers while its latest verdict on X is fresh (written less than its
//     window ago), and for a grace period from when the walk first reached
//     it (time to write its first verdict, or its first after a pause). A
//     member the walk stops reaching (enough members counted above it)
//     is forgotten by the walk: reached again, it has a grace period again.
//   - This member probes X when fewer than Probers members ranked above it
//     count. So the Probers highest-ranked members probe X; one that leaves
//     (its registration deleted or expired) or stops writing is skipped
//     by everyone, and the next one takes over: only the next one, which
//     the others count during its grace period.
//   - X's shared verdict is Unhealthy if any fresh verdict of a live
//     member says so, else Healthy if one says so; without fresh verdicts
//     there is none. This member applies it to X when it does not probe X.
type view struct {
	self    string
	probers int
	grace   time.Duration

	peers map[string]*peer // live or not, self excluded
	addrs map[resolver.Key]*address
	// live are the ids of the live members, self included, sorted; nil
	// when the rankings must be made again.
	live []string
	// stale: addresses or live members changed since the last filter, which
	// must be made again (it decides unknown addresses by the live members).
	stale bool
}

// peer is another member's registration.
type peer struct {
	deadline time.Time // its registration lasts until then
}

// address is one target of the checker, with what the fleet says of it.
type address struct {
	addr     resolver.Address
	seed     uint64
	verdicts map[string]*heard
	ranking  []string // live members by score on the address, highest first
	// reached holds, for each member the decision's walk reaches, when it
	// first did: the start of its grace period.
	reached map[string]time.Time

	probe   bool          // this member probes it
	applied health.Status // the shared verdict last applied; Unknown: none
	shared  health.Status // the shared verdict at the last decision
}

// heard is one member's latest verdict on an address.
type heard struct {
	status health.Status
	reason string
	epoch  int64
	seq    uint64
	at     time.Time // when it was written (as far as this view can tell)
	window time.Duration
}

func (h *heard) fresh(now time.Time) bool { return now.Before(h.at.Add(h.window)) }

func newView(self string, probers int, grace time.Duration) *view {
	return &view{
		self: self, probers: probers, grace: grace,
		peers: make(map[string]*peer),
		addrs: make(map[resolver.Key]*address),
	}
}

// setTargets makes ts the addresses of the view: new ones are added, gone
// ones dropped with what was heard of them.
func (v *view) setTargets(ts []resolver.Address, now time.Time) {
	keep := make(map[resolver.Key]bool, len(ts))
	for _, a := range ts {
		k := a.Key()
		keep[k] = true
		if x := v.addrs[k]; x != nil {
			x.addr = a
			continue
		}
		v.addrs[k] = &address{
			addr: a, seed: rendezvous.Seed(rendezvous.AddressString(k)),
			verdicts: make(map[string]*heard), reached: make(map[string]time.Time),
		}
		v.live = nil
		v.stale = true
	}
	for k := range v.addrs {
		if !keep[k] {
			delete(v.addrs, k)
		}
	}
}

// register records a registration of member heard at now; age is how
// old it already was (for values replayed when the view started). It
// reports whether member became live.
func (v *view) register(member string, ttl, age time.Duration, now time.Time) bool {
	if member == v.self {
		return false
	}
	age = min(max(age, 0), ttl)
	p := v.peers[member]
	if p == nil {
		p = &peer{}
		v.peers[member] = p
	}
	wasLive := now.Before(p.deadline)
	p.deadline = now.Add(ttl - age)
	if !wasLive && now.Before(p.deadline) {
		v.live = nil
		return true
	}
	return false
}

// leave forgets member's registration and verdicts: it left.
func (v *view) leave(member string) {
	if _, ok := v.peers[member]; ok {
		delete(v.peers, member)
		for _, x := range v.addrs {
			delete(x.verdicts, member)
			delete(x.reached, member)
		}
		v.live = nil
	}
}

// hear records a verdict; it reports false (and changes nothing) when the
// address is not a target here or the view holds a verdict of that member
// on it with a version as new or newer.
func (v *view) hear(k resolver.Key, member string, h heard) bool {
	x := v.addrs[k]
	if x == nil {
		return false
	}
	if old := x.verdicts[member]; old != nil && !newer(h.epoch, h.seq, old.epoch, old.seq) {
		return false
	}
	x.verdicts[member] = &h
	return true
}

// forget drops member's verdict on k (its key was deleted).
func (v *view) forget(k resolver.Key, member string) {
	if x := v.addrs[k]; x != nil {
		delete(x.verdicts, member)
	}
}

// nextExpiry returns the earliest registration deadline still ahead
// (zero if none): when the live members may change.
func (v *view) nextExpiry(now time.Time) time.Time {
	var next time.Time
	for _, p := range v.peers {
		if now.Before(p.deadline) {
			next = earliest(next, p.deadline)
		}
	}
	return next
}

// liveIDs returns the live members, self included, sorted.
func (v *view) liveIDs(now time.Time) []string {
	ids := []string{v.self}
	for id, p := range v.peers {
		if now.Before(p.deadline) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// rank forgets members whose registration expired, with their verdicts,
// and makes the rankings again if the live members changed.
func (v *view) rank(now time.Time) {
	for id, p := range v.peers {
		if !now.Before(p.deadline) {
			delete(v.peers, id)
			for _, x := range v.addrs {
				delete(x.verdicts, id)
				delete(x.reached, id)
			}
		}
	}
	ids := v.liveIDs(now)
	if v.live != nil && slices.Equal(ids, v.live) {
		return
	}
	v.live = ids
	v.stale = true
	for _, x := range v.addrs {
		x.ranking = ranking(x.seed, ids, x.ranking)
	}
}

// ranking orders ids by rendezvous score under seed, highest first (ties,
// which XXH64 makes rare, by id).
func ranking(seed uint64, ids []string, buf []string) []string {
	type scored struct {
		id    string
		score uint64
	}
	s := make([]scored, len(ids))
	for i, id := range ids {
		s[i] = scored{id, rendezvous.Score(seed, id)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		return cmp.Compare(a.id, b.id)
	})
	buf = buf[:0]
	for _, e := range s {
		buf = append(buf, e.id)
	}
	return buf
}

// counts reports whether member, reached by the walk on x, counts as a
// prober of x at now, and until when that answer holds (zero: until
// something is heard).
func (v *view) counts(x *address, member string, now time.Time) (bool, time.Time) {
	if h := x.verdicts[member]; h != nil {
		if until := h.at.Add(h.window); now.Before(until) {
			return true, until
		}
	}
	since, ok := x.reached[member]
	if !ok {
		since = now
		x.reached[member] = now
	}
	if until := since.Add(v.grace); now.Before(until) {
		return true, until
	}
	return false, time.Time{}
}

// decision is what the view decides for one address.
type decision struct {
	probe bool
	// why explains a decision to probe: who was skipped, or the rank.
	why string
	// shared is the shared verdict (Unknown: none), with its reason and
	// the member whose verdict it is.
	shared health.Status
	reason string
	from   string
}

// decide applies the rules to x; next is when the decision may change
// without anything being heard (zero: never).
func (v *view) decide(x *address, now time.Time) (d decision, next time.Time) {
	need := v.probers
	var skipped string
	walked := len(x.ranking)
	for i, id := range x.ranking {
		if id == v.self {
			d.probe = true
			switch {
			case skipped != "":
				d.why = skipped
			default:
				d.why = "ranked " + strconv.Itoa(i+1) + " of " + strconv.Itoa(len(x.ranking)) + " members"
			}
			walked = i
			break
		}
		ok, until := v.counts(x, id, now)
		next = earliest(next, until)
		if ok {
			if need--; need == 0 {
				walked = i + 1
				break
			}
		} else if skipped == "" {
			skipped = v.lateness(x, id, now)
		}
	}
	for id := range x.reached {
		if !slices.Contains(x.ranking[:walked], id) {
			delete(x.reached, id) // not reached: a grace period again when it is
		}
	}
	// The shared verdict: of the fresh verdicts of live members, an
	// unhealthy one if any, else a healthy one; the highest-ranked of
	// them speaks (the verdicts are few: those of the recent probers).
	var best *heard
	var bestScore uint64
	for id, h := range x.verdicts {
		if !h.fresh(now) || !v.isLive(id, now) {
			continue
		}
		next = earliest(next, h.at.Add(h.window))
		score := rendezvous.Score(x.seed, id)
		switch {
		case best == nil,
			h.status == health.Unhealthy && best.status != health.Unhealthy,
			h.status == best.status && score > bestScore:
			best, bestScore, d.from = h, score, id
		}
	}
	if best != nil {
		d.shared, d.reason = best.status, best.reason
	}
	return d, next
}

// isLive reports whether member is this one or has a registration that
// lasts past now.
func (v *view) isLive(member string, now time.Time) bool {
	if member == v.self {
		return true
	}
	p := v.peers[member]
	return p != nil && now.Before(p.deadline)
}

// lateness says why member, ranked above this one, does not count.
func (v *view) lateness(x *address, member string, now time.Time) string {
	if h := x.verdicts[member]; h != nil {
		return "member " + member + " stopped writing: its last verdict is " + now.Sub(h.at).Round(time.Millisecond).String() +
			" old, its window " + h.window.String()
	}
	return "member " + member + " wrote no verdict within " + v.grace.String()
}

// filter returns the probe filter of the current decisions: addresses
// decided are probed as decided; an address the view does not know yet
// (the checker got it first) is probed if this member is among the
// Probers highest-ranked live members for it.
func (v *view) filter(now time.Time) func(resolver.Address) bool {
	v.stale = false
	probe := make(map[resolver.Key]bool, len(v.addrs))
	for k, x := range v.addrs {
		probe[k] = x.probe
	}
	live := v.liveIDs(now)
	self, r := v.self, v.probers
	return func(a resolver.Address) bool {
		if p, ok := probe[a.Key()]; ok {
			return p
		}
		rank := ranking(rendezvous.Seed(rendezvous.AddressString(a.Key())), live, nil)
		return slices.Index(rank, self) < r
	}
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
