package fleet

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// Role returns this member's role on the address a of the upstream name
// (normalized as resolver.NormalizeName does), as Roles lists it, and
// whether it has one: a is a target of an attached upstream (and, while
// verdicts are shared, the fleet has decided it once). It reads that one
// address's snapshot, never the others', and never waits for the network.
func (f *Fleet) Role(name string, a resolver.Address) (Role, bool) {
	f.mu.Lock()
	g := f.groups[resolver.NormalizeName(name)]
	f.mu.Unlock()
	if g == nil {
		return Role{}, false
	}
	g.snapMu.Lock()
	r, sharing := g.roles[a.Key()], g.roles != nil
	g.snapMu.Unlock()
	if r != nil {
		return r.role(g.name, time.Now()), true
	}
	if t, ok := g.chk.Target(a); ok && !sharing {
		return Role{Name: g.name, Address: t.Address, Kind: RoleLocal}, true
	}
	return Role{}, false
}

// StatusRole is Role in the form of vigil's status page: it is a
// statuspage.Roles, so that the page of a fleet member's upstreams shows
// their roles with
//
//	statuspage.New(statuspage.Of(upstreams...), statuspage.Config{}, statuspage.WithRoles(f.StatusRole))
//
// A prober is statuspage.RoleProber with its rank; a member applying the
// fleet's verdict is statuspage.RoleFollower naming the prober it comes
// from, with that verdict's reason and age; a member waiting for the
// fleet's first verdict on the address is a follower of no member yet; a
// member that does not share now is statuspage.RoleLocal. Disagrees is
// Role.Outvoted: this member's verdicts keep disagreeing with the other
// probers'. Each call reads one address's snapshot: a page of 100
// addresses costs 100 look-ups, not 100 lists of every role.
func (f *Fleet) StatusRole(upstream string, a resolver.Address) (statuspage.Role, bool) {
	r, ok := f.Role(upstream, a)
	if !ok {
		return statuspage.Role{}, false
	}
	s := statuspage.Role{Disagrees: r.Outvoted}
	switch r.Kind {
	case RoleProber:
		s.Kind, s.Rank = statuspage.RoleProber, r.Rank
	case RoleApplying:
		s.Kind, s.Member, s.Reason, s.Age = statuspage.RoleFollower, r.From, r.Reason, r.Age
	case RoleWaiting:
		s.Kind, s.Reason = statuspage.RoleFollower, "no fleet verdict yet: it keeps its own"
	default:
		s.Kind = statuspage.RoleLocal
	}
	return s, true
}
