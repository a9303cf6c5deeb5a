// Package namedbus hands out buses to upstreams by name. Upstreams of one
// name (at different ports, or asking different DNS servers) must not share
// a bus: its topics are the name's, so each would take the other's address
// sets, and the first to stop would release the other's. A Set gives the
// shared bus to the first live upstream of a name and a bus of its own to
// every other one alive at the same time.
package namedbus

import (
	"log/slog"
	"sync"

	"github.com/vigil-go/vigil/events"
)

// Set hands out buses: the shared one, or one of their own. It is safe for
// concurrent use.
type Set struct {
	shared *events.Bus
	log    *slog.Logger

	mu   sync.Mutex
	live map[string]bool // names whose upstream on the shared bus is alive
}

// New returns a Set around shared; log is the logger of the buses it makes.
func New(shared *events.Bus, log *slog.Logger) *Set {
	return &Set{shared: shared, log: log, live: make(map[string]bool)}
}

// Acquire returns the bus for a new upstream of name (normalized) and the
// function to call once that upstream's Run has returned (or it will never
// run): it frees the name on the shared bus, or closes the bus of its own.
func (s *Set) Acquire(name string) (bus *events.Bus, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live[name] {
		s.live[name] = true
		return s.shared, func() {
			s.mu.Lock()
			delete(s.live, name)
			s.mu.Unlock()
		}
	}
	own := events.New(events.WithLogger(s.log))
	return own, own.Close
}

// Shared returns the shared bus.
func (s *Set) Shared() *events.Bus { return s.shared }
