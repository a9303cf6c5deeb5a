package statuspage

import (
	"cmp"
	"slices"
	"sync"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/resolver"
)

// departed remembers, for each upstream, the addresses the page showed
// live, so that it can ask the checker about those that left:
// health.Checker answers for one address (Remembered) and has no list of
// the addresses it remembers. It is what the page keeps between requests,
// bounded; it goes once the checker lists its memory.
type departed struct {
	limit int // addresses per upstream

	mu   sync.Mutex
	tick uint64
	seen map[*vigil.Upstream]map[resolver.Key]seenAddr
}

type seenAddr struct {
	addr resolver.Address
	at   uint64 // tick of the last page that showed it live
}

func newDeparted(limit int) *departed {
	return &departed{limit: limit, seen: make(map[*vigil.Upstream]map[resolver.Key]seenAddr)}
}

// note records the addresses live of u and returns those seen live before
// that are not live now, the most recently seen first.
func (d *departed) note(u *vigil.Upstream, live []resolver.Address) []resolver.Address {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tick++
	m := d.seen[u]
	if m == nil {
		m = make(map[resolver.Key]seenAddr)
		d.seen[u] = m
	}
	for _, a := range live {
		m[a.Key()] = seenAddr{addr: a, at: d.tick}
	}
	var left []seenAddr
	for _, s := range m {
		if s.at != d.tick {
			left = append(left, s)
		}
	}
	slices.SortFunc(left, func(a, b seenAddr) int {
		return cmp.Or(cmp.Compare(b.at, a.at), resolver.Compare(a.addr, b.addr))
	})
	if over := len(m) - d.limit; over > 0 { // forget those seen longest ago
		for _, s := range left[max(len(left)-over, 0):] {
			delete(m, s.addr.Key())
		}
		left = left[:max(len(left)-over, 0)]
	}
	out := make([]resolver.Address, len(left))
	for i, s := range left {
		out[i] = s.addr
	}
	return out
}

// forget drops addresses of u that its checker no longer remembers.
func (d *departed) forget(u *vigil.Upstream, addrs []resolver.Address) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range addrs {
		delete(d.seen[u], a.Key())
	}
}

// keep forgets the upstreams not in ups: they stopped, or are no longer
// shown.
func (d *departed) keep(ups []*vigil.Upstream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for u := range d.seen {
		if !slices.Contains(ups, u) {
			delete(d.seen, u)
		}
	}
}
