package health

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vigil-go/vigil/resolver"
)

// MaxMemoryAge is how long a Memory keeps a departed target's state: an
// address that returns later starts afresh, as a new target. Kept state is
// only a head start (the returning target is probed at once, R7), and an
// hour spans DNS flapping and idle stops while sparing an address reused by
// another backend (a pod IP, say) long after the first left.
const MaxMemoryAge = time.Hour

// Memory remembers the state of departed targets: both verdicts with their
// counters, an ejection with its deadline, probation, the reason, the last
// probe and the recent status changes. It holds at most its size of them;
// when full it forgets the least recently departed first, and it forgets
// any after MaxMemoryAge. A target that returns takes its state back out.
//
// Every checker has a memory of its own, sized by Config.Memory. One made
// with NewMemory and given to checkers with WithMemory is shared: a
// checker's state then outlives the checker (DESIGN R9). Entries are kept
// by (checker name, address), so checkers of different names sharing a
// Memory never take each other's state, while a new checker of the same
// name takes up where the last one stopped: when Run returns, a checker
// with a shared memory leaves the state of each of its live targets in it,
// and the next checker of that name takes each one back, before any probe,
// when its address arrives. It is then probed at once, so a remembered
// verdict that no longer holds lasts one probe (or, for a passive
// ejection, to its deadline or its early end), never longer than a fresh
// checker would need to find the same again. Two checkers of one name
// running at once with one Memory overwrite each other's entries: the
// last to leave an address wins.
//
// Live targets are never in a Memory (they are in their checker), so none
// can be evicted. A Memory is safe for concurrent use; its methods never
// call back into a checker.
type Memory struct {
	mu    sync.Mutex // guards everything below; taken after a checker's own lock, never before
	lru   *simplelru.LRU[memKey, remembered]
	names map[string]int // entries per checker name
}

// memKey is the identity of a remembered target: its checker's name and
// its address's key (STYLE rule 10: state belongs to a checker and an
// address, not to the address alone).
type memKey struct {
	name string
	key  resolver.Key
}

// remembered is the state of a departed target.
type remembered struct {
	addr  resolver.Address
	state state
	at    time.Time // when it departed
}

// NewMemory returns a Memory of size departed targets, across every name
// that uses it; size < 1 means DefaultMemory.
func NewMemory(size int) *Memory {
	if size < 1 {
		size = DefaultMemory
	}
	m := &Memory{names: make(map[string]int)}
	// Under m.mu: the callback, which also fires on Remove, Purge and
	// Resize, keeps the count per name.
	m.lru, _ = simplelru.NewLRU(size, func(k memKey, _ remembered) { m.forget(k.name) })
	return m
}

// newMemory returns a checker's own memory, or nil (remember nothing) when
// size < 1.
func newMemory(size int) *Memory {
	if size < 1 {
		return nil
	}
	return NewMemory(size)
}

func (m *Memory) forget(name string) {
	if m.names[name]--; m.names[name] <= 0 {
		delete(m.names, name)
	}
}

// Len returns how many departed targets m holds, of every name.
func (m *Memory) Len() int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(time.Now())
	return m.lru.Len()
}

// expire forgets the entries older than MaxMemoryAge. The LRU's order is
// the order of departure (put refreshes recency, peek does not, take
// removes), so they are all at its old end. m.mu is held.
func (m *Memory) expire(now time.Time) {
	for {
		_, r, ok := m.lru.GetOldest()
		if !ok || now.Sub(r.at) < MaxMemoryAge {
			return
		}
		m.lru.RemoveOldest()
	}
}

// put remembers st as name's state of addr, departed at now.
func (m *Memory) put(name string, addr resolver.Address, st state, now time.Time) {
	if m == nil {
		return
	}
	k := memKey{name, addr.Key()}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if !m.lru.Contains(k) {
		m.names[name]++
	}
	m.lru.Add(k, remembered{addr: addr, state: st, at: now})
}

// take removes and returns name's state of k, unless it is older than
// MaxMemoryAge.
func (m *Memory) take(name string, k resolver.Key, now time.Time) (remembered, bool) {
	if m == nil {
		return remembered{}, false
	}
	mk := memKey{name, k}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.lru.Peek(mk)
	if !ok {
		return remembered{}, false
	}
	m.lru.Remove(mk)
	return r, now.Sub(r.at) < MaxMemoryAge
}

// peek returns name's state of k, leaving recency alone.
func (m *Memory) peek(name string, k resolver.Key, now time.Time) (remembered, bool) {
	if m == nil {
		return remembered{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	return m.lru.Peek(memKey{name, k})
}

// all returns every state remembered for name.
func (m *Memory) all(name string, now time.Time) []remembered {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	out := make([]remembered, 0, m.names[name])
	if m.names[name] == 0 {
		return out
	}
	for _, k := range m.lru.Keys() {
		if k.name == name {
			r, _ := m.lru.Peek(k)
			out = append(out, r)
		}
	}
	return out
}

// count returns how many targets m remembers for name.
func (m *Memory) count(name string, now time.Time) int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	return m.names[name]
}

// resize returns a memory of size entries keeping the most recent ones;
// for a checker's own memory.
func (m *Memory) resize(size int) *Memory {
	switch {
	case size < 1:
		return nil
	case m == nil:
		return newMemory(size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lru.Resize(size)
	return m
}
