package tally

import (
	"cmp"
	"maps"
	"slices"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Upstream is what a Tally holds of one upstream at one moment. The maps
// are copies: the reader owns them.
type Upstream struct {
	Name        string
	Probes      map[string]uint64   // by outcome; every one of ProbeOutcomes is there
	Transitions map[string]uint64   // status changes, by the status changed to
	Queries     map[QueryKey]uint64 // DNS queries, by type and result
	Failures    map[string]uint64   // failed resolutions, by reason (ErrorClass)
	Requests    map[string]uint64   // request outcomes, by class (RequestOutcome)
	// Picks counts the same requests by picked target; nil WithoutTargets.
	// While a checker is added, targets it no longer has are dropped.
	Picks map[resolver.Key]uint64
	// Resolved is set once an address set was published; Addresses is the
	// size of the last one.
	Resolved  bool
	Addresses int
	// Checker is the added checker's state; nil without one.
	Checker *Checker
}

// Checker is the state of an added checker at one moment.
type Checker struct {
	Stats              health.Stats
	Healthy, Unhealthy int      // live targets by status
	Targets            []Target // every live target, in the checker's order; nil WithoutTargets
}

// Target is one live target's health.
type Target struct {
	Address resolver.Address
	Healthy bool
}

// Read returns the upstreams watched (and, after Close, those that were),
// sorted by name, with the state of their checkers read now.
func (t *Tally) Read() []Upstream {
	t.mu.Lock()
	ups := make([]*upstream, 0, len(t.ups))
	for _, u := range t.ups {
		ups = append(ups, u)
	}
	t.mu.Unlock()
	slices.SortFunc(ups, func(a, b *upstream) int { return cmp.Compare(a.name, b.name) })
	out := make([]Upstream, 0, len(ups))
	for _, u := range ups {
		out = append(out, t.read(u))
	}
	return out
}

// read copies the counts of u and reads its checker, dropping the picks
// of targets the checker no longer has.
func (t *Tally) read(u *upstream) Upstream {
	u.mu.Lock()
	ch := u.checker
	u.mu.Unlock()

	var cs *Checker
	var live map[resolver.Key]bool
	if ch != nil {
		cs = &Checker{Stats: ch.Stats()}
		ts := ch.Targets()
		if t.perTarget {
			cs.Targets = make([]Target, 0, len(ts))
			live = make(map[resolver.Key]bool, len(ts))
		}
		for _, tg := range ts {
			healthy := tg.Status == health.Healthy
			if healthy {
				cs.Healthy++
			} else {
				cs.Unhealthy++
			}
			if t.perTarget {
				cs.Targets = append(cs.Targets, Target{Address: tg.Address, Healthy: healthy})
				live[tg.Address.Key()] = true
			}
		}
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	if live != nil {
		maps.DeleteFunc(u.picks, func(k resolver.Key, _ uint64) bool { return !live[k] })
	}
	return Upstream{
		Name:        u.name,
		Probes:      maps.Clone(u.probes),
		Transitions: maps.Clone(u.transitions),
		Queries:     maps.Clone(u.queries),
		Failures:    maps.Clone(u.failures),
		Requests:    maps.Clone(u.requests),
		Picks:       maps.Clone(u.picks),
		Resolved:    u.version > 0,
		Addresses:   u.addresses,
		Checker:     cs,
	}
}
