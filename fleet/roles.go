package fleet

import (
	"slices"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// RoleKind is what this member does for the fleet on one address.
type RoleKind int

const (
	// RoleLocal: verdicts are not shared now (not running, not connected,
	// falling back): this member probes the address itself, as without a
	// fleet.
	RoleLocal RoleKind = iota
	// RoleProber: this member probes the address for the fleet.
	RoleProber
	// RoleApplying: this member applies the fleet's verdict on the
	// address, reached by its probers.
	RoleApplying
	// RoleWaiting: verdicts are shared, but the address has no fleet
	// verdict yet and this member does not probe it: it keeps the verdict
	// it holds.
	RoleWaiting
)

// String returns "local", "prober", "applying" or "waiting".
func (k RoleKind) String() string {
	switch k {
	case RoleProber:
		return "prober"
	case RoleApplying:
		return "applying"
	case RoleWaiting:
		return "waiting"
	}
	return "local"
}

// Role is this member's part in the fleet's verdict on one address, for
// an operator's status page.
type Role struct {
	Name    string // the upstream
	Address resolver.Address
	Kind    RoleKind
	// Rank is, for a prober, its place among the address's probers (1: the
	// highest-ranked); 0 otherwise.
	Rank int
	// Verdict is the fleet's verdict on the address (Unknown: none yet, or
	// fewer than Quorum probers find it unhealthy and none healthy); From
	// is the prober it comes from (the highest-ranked of those that agree
	// on it), Reason that prober's reason and Age how old its verdict is.
	Verdict health.Status
	From    string
	Reason  string
	Age     time.Duration
	// Probers are the address's probers as this member sees them,
	// highest-ranked first.
	Probers []ProberVerdict
	// Outvoted reports that this member's own verdicts on the address
	// keep disagreeing with the other probers': it probably has a broken
	// path to the backend. Its own traffic avoids the backend; the fleet's
	// does not.
	Outvoted bool
}

// ProberVerdict is one prober's latest value on an address.
type ProberVerdict struct {
	Member string
	Zone   string
	Status health.Status // Unknown: it has just taken the address up and has no verdict yet
	Reason string
	Age    time.Duration
	// Disagrees reports that its verdicts keep disagreeing with the other
	// probers' (in the minority several times in a row).
	Disagrees bool
}

// roleSnap is a Role as the group's loop last decided it, with times
// instead of ages.
type roleSnap struct {
	addr     resolver.Address
	kind     RoleKind
	rank     int
	verdict  health.Status
	from     string
	reason   string
	at       time.Time
	probers  []proberSnap
	outvoted bool
}

type proberSnap struct {
	member, zone string
	status       health.Status
	reason       string
	at           time.Time
	flagged      bool
}

// snapshot records x's role for Roles and Probing.
func (s *sharing) snapshot(x *address, now time.Time, shared health.Status, from *entry) {
	v := s.v
	r := &roleSnap{addr: x.addr, kind: RoleWaiting, verdict: shared}
	switch {
	case x.probe:
		r.kind = RoleProber
		for i, c := range v.chosen(x, now, false) {
			if c.member == v.self {
				r.rank = i + 1
			}
		}
	case from != nil:
		r.kind = RoleApplying
	}
	if from != nil {
		r.from, r.reason, r.at = from.member, from.reason, from.at
	}
	for _, c := range v.chosen(x, now, true) {
		r.probers = append(r.probers, proberSnap{member: c.member, zone: c.zone, status: c.status, reason: c.reason, at: c.at, flagged: c.flagged})
	}
	if own := x.entries[v.self]; own != nil && own.fresh(now) && own.flagged {
		r.outvoted = true
	}
	g := s.g
	g.snapMu.Lock()
	if g.roles == nil {
		g.roles = make(map[resolver.Key]*roleSnap)
	}
	g.roles[x.addr.Key()] = r
	g.snapMu.Unlock()
}

// role returns r as the Role of an address of the upstream name, its
// ages counted until now. A roleSnap is never changed once recorded: it
// can be read without the lock.
func (r *roleSnap) role(name string, now time.Time) Role {
	role := Role{Name: name, Address: r.addr, Kind: r.kind, Rank: r.rank, Verdict: r.verdict,
		From: r.from, Reason: r.reason, Outvoted: r.outvoted}
	if r.from != "" {
		role.Age = now.Sub(r.at)
	}
	if len(r.probers) > 0 {
		role.Probers = make([]ProberVerdict, 0, len(r.probers))
	}
	for _, p := range r.probers {
		role.Probers = append(role.Probers, ProberVerdict{Member: p.member, Zone: p.zone, Status: p.status,
			Reason: p.reason, Age: now.Sub(p.at), Disagrees: p.flagged})
	}
	return role
}

// Roles returns this member's role on every address of every attached
// upstream, by upstream name then address: whether it probes the address
// for the fleet (and its rank among the probers), or applies whose
// verdict (the prober, its reason and age), and which probers' verdicts
// keep disagreeing with the others'. It reads what the fleet last decided
// and never waits for the network; while verdicts are not shared every
// address is RoleLocal.
func (f *Fleet) Roles() []Role {
	groups := f.attachedGroups()
	now := time.Now()
	var out []Role
	for _, name := range keys(groups) {
		out = append(out, groups[name].roleList(now)...)
	}
	return out
}

// roleList returns the group's roles, sorted by address.
func (g *group) roleList(now time.Time) []Role {
	g.snapMu.Lock()
	snaps := g.roles
	var out []Role
	for _, r := range snaps {
		out = append(out, r.role(g.name, now))
	}
	g.snapMu.Unlock()
	if snaps == nil {
		for _, t := range g.chk.Targets() {
			out = append(out, Role{Name: g.name, Address: t.Address, Kind: RoleLocal})
		}
	}
	slices.SortFunc(out, func(a, b Role) int { return a.Address.Key().Compare(b.Address.Key()) })
	return out
}

// snapshot returns what the member probes for the fleet, sorted, and the
// members probing the group's addresses as this member sees them (itself
// included), sorted; nil while not sharing.
func (g *group) snapshot() ([]resolver.Address, []string) {
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	if g.roles == nil {
		return nil, nil
	}
	var addrs []resolver.Address
	members := []string{g.f.cfg.Member}
	for _, r := range g.roles {
		if r.kind == RoleProber {
			addrs = append(addrs, r.addr)
		}
		for _, p := range r.probers {
			members = append(members, p.member)
		}
	}
	resolver.Sort(addrs)
	slices.Sort(members)
	return addrs, slices.Compact(members)
}
