package statuspage

import (
	"slices"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/resolver"
)

// Upstreams is what a page shows: anything that holds upstreams.
// *vigil.Client and *vigilgrpc.Builder are Upstreams; Of makes one of
// Upstreams given by hand. Upstreams is called once per page, from the
// request's goroutine; nil elements are skipped.
type Upstreams interface {
	Upstreams() []*vigil.Upstream
}

// Of returns Upstreams that are always ups: one Upstream, or those a
// fleet shares.
func Of(ups ...*vigil.Upstream) Upstreams { return fixed(slices.Clone(ups)) }

type fixed []*vigil.Upstream

func (f fixed) Upstreams() []*vigil.Upstream { return f }

// Roles tells the role in a fleet of the address a of the upstream whose
// (normalized) DNS name is upstream, and whether it has one. The page calls
// it for every address it shows, from the request's goroutine; it must not
// block.
//
// The fleet package holds these roles; Roles keeps this package from
// importing it (and NATS). Wiring a fleet is one function that reads its
// per-address view and returns a Role.
type Roles func(upstream string, a resolver.Address) (Role, bool)

// RoleKind says what this member of a fleet does for an address.
type RoleKind string

// The roles of a member for an address.
const (
	// RoleProber: the member probes the address for the fleet and shares its
	// verdict; Role.Rank says where it ranks among the probers.
	RoleProber RoleKind = "prober"
	// RoleFollower: the member does not probe the address; it applies the
	// verdict of the member Role.Member.
	RoleFollower RoleKind = "follower"
	// RoleLocal: the member probes the address for itself alone (verdicts
	// are not shared now).
	RoleLocal RoleKind = "local"
)

// Role is an address's role in a fleet, as seen by this member.
type Role struct {
	Kind RoleKind
	Rank int // RoleProber: its rank among the address's probers, 1 first
	// RoleFollower: the member whose verdict is applied, that verdict's
	// reason and its age.
	Member string
	Reason string
	Age    time.Duration
	// Disagrees: this member's view of the address keeps disagreeing with
	// the fleet's (the fleet reports it).
	Disagrees bool
}
