package subset

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/resolver"
)

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError: the
// errors of New.
var ErrInvalidConfig = errors.New("subset: invalid config")

// ErrInvalid is the former name of ErrInvalidConfig.
//
// Deprecated: use ErrInvalidConfig.
var ErrInvalid = ErrInvalidConfig

// ConfigError reports an invalid argument of New: Field names it ("ID",
// "Size"). It matches ErrInvalidConfig with errors.Is.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // the underlying error, if any
}

// Error implements error: "subset: invalid config: <Field>: <Reason>".
func (e *ConfigError) Error() string { return "subset: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Subset picks one client's k addresses of every address set. Create it
// with New; the zero value keeps every address.
type Subset struct {
	id   string
	size int
	seed uint64
}

// New returns the subsetting of the client id, keeping size addresses of
// every set. id must not be empty (every client with the same id gets the
// same subset: use something unique per client, a pod or host name); size
// must be at least 1. Bad input is a *ConfigError.
func New(id string, size int) (*Subset, error) {
	switch {
	case id == "":
		return nil, &ConfigError{Field: "ID", Reason: "empty"}
	case size < 1:
		return nil, &ConfigError{Field: "Size", Reason: fmt.Sprintf("%d, want at least 1", size)}
	}
	return &Subset{id: id, size: size, seed: rendezvous.Seed(id)}, nil
}

// Filter returns a function keeping size addresses of every set for the
// client id, for health.WithTargetFilter. Unlike New it takes any input: a
// size below 1 keeps every address, and an empty id is an id like any other.
func Filter(id string, size int) func([]resolver.Address) []resolver.Address {
	s := &Subset{id: id, size: size, seed: rendezvous.Seed(id)}
	return s.Filter
}

// ID returns the client's id.
func (s *Subset) ID() string { return s.id }

// Size returns how many addresses the subset keeps.
func (s *Subset) Size() int { return s.size }

// HealthOption returns health.WithTargetFilter(s.Filter), for
// vigil.WithHealthOptions or health.NewChecker.
func (s *Subset) HealthOption() health.Option { return health.WithTargetFilter(s.Filter) }

// scored is one address of a set: its score and its position.
type scored struct {
	score uint64
	at    int
}

// Filter returns the subset of addrs: the Size addresses with the lowest
// scores, in the order of addrs. Addresses are told apart by their Key; a
// Key that appears twice counts once (its first appearance is kept).
// When addrs has no more than Size distinct addresses, addrs itself is
// returned. Filter never modifies addrs.
func (s *Subset) Filter(addrs []resolver.Address) []resolver.Address {
	if s == nil || s.size < 1 || len(addrs) <= s.size {
		return addrs
	}
	all := make([]scored, len(addrs))
	for i, a := range addrs {
		all[i] = scored{score: rendezvous.ScoreAddress(s.seed, a.Key()), at: i}
	}
	// By score; a Key's copies, having one score, end up side by side,
	// its first appearance first.
	slices.SortFunc(all, func(a, b scored) int {
		if a.score != b.score {
			return cmp.Compare(a.score, b.score)
		}
		return cmp.Or(addrs[a.at].Key().Compare(addrs[b.at].Key()), cmp.Compare(a.at, b.at))
	})
	keep := make([]int, 0, s.size)
	more := false // a distinct address beyond the size exists
	for i, e := range all {
		if i > 0 && e.score == all[i-1].score && addrs[e.at].Key() == addrs[all[i-1].at].Key() {
			continue // a later copy
		}
		if len(keep) == s.size {
			more = true
			break
		}
		keep = append(keep, e.at)
	}
	if !more {
		return addrs
	}
	slices.Sort(keep)
	out := make([]resolver.Address, len(keep))
	for i, at := range keep {
		out[i] = addrs[at]
	}
	return out
}
