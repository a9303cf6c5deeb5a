package health

import (
	"sort"
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
// verdict that no longer holds is corrected by probes as any verdict is (a
// remembered ejection keeps its deadline), and a failure already found is
// not trusted again for the time a fresh checker would need to find it
// again. Two checkers of one name
// running at once with one Memory overwrite each other's entries: the
// last to leave an address wins.
//
// Live targets are never in a Memory (they are in their checker), so none
// can be evicted. A Memory is safe for concurrent use; its methods never
// call back into a checker.
type Memory struct {
	mu     sync.Mutex // guards everything below; taken after a checker's own lock, never before
	size   int
	lru    *simplelru.LRU[memKey, *remembered] // targets that departed one by one
	names  map[string]int                      // lru entries per checker name
	parked map[string]*parkedSet               // per name, what the last checker to stop left
	nPark  int                                 // remembered targets in parked sets
	took   *remembered                         // what the last lru.Remove removed: take's one lookup
}

// parkedSet is what a checker left when its Run returned: every live
// target, in key order, so that the next checker of its name, whose first
// address set arrives in that order too, finds each one's state by walking
// along rather than by a lookup (BenchmarkRestore).
type parkedSet struct {
	at   time.Time
	rs   []remembered // by key
	gone []bool       // taken back or evicted
	live int
	next int // where the next take in key order looks first
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
	m := &Memory{size: size, names: make(map[string]int), parked: make(map[string]*parkedSet)}
	// Under m.mu: the callback, which also fires on Remove, Purge and
	// Resize, keeps the count per name and hands take what it removed.
	m.lru, _ = simplelru.NewLRU(size, func(k memKey, r *remembered) {
		m.forget(k.name)
		m.took = r
	})
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
	return m.lru.Len() + m.nPark
}

// expire forgets the entries older than MaxMemoryAge. The LRU's order is
// the order of departure (put refreshes recency, peek does not, take
// removes), so they are all at its old end. m.mu is held.
func (m *Memory) expire(now time.Time) {
	for {
		_, r, ok := m.lru.GetOldest()
		if !ok || now.Sub(r.at) < MaxMemoryAge {
			break
		}
		m.lru.RemoveOldest()
	}
	for name, p := range m.parked {
		if now.Sub(p.at) >= MaxMemoryAge {
			m.nPark -= p.live
			delete(m.parked, name)
		}
	}
}

// trim forgets the least recently departed targets beyond m's size; a
// parked set's members departed together, so any of them goes first.
// m.mu is held.
func (m *Memory) trim() {
	for m.lru.Len()+m.nPark > m.size {
		var oldest *parkedSet
		var oldestName string
		for name, p := range m.parked {
			if oldest == nil || p.at.Before(oldest.at) {
				oldest, oldestName = p, name
			}
		}
		if _, r, ok := m.lru.GetOldest(); oldest == nil || ok && !r.at.After(oldest.at) {
			m.lru.RemoveOldest()
			continue
		}
		i := len(oldest.gone) - 1
		for oldest.gone[i] {
			i--
		}
		m.drop(oldestName, oldest, i)
	}
}

// drop marks member i of name's parked set p gone; m.mu is held.
func (m *Memory) drop(name string, p *parkedSet, i int) {
	p.gone[i] = true
	p.live--
	m.nPark--
	if p.live == 0 {
		delete(m.parked, name)
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
	m.lru.Add(k, &remembered{addr: addr, state: st, at: now})
	m.trim()
}

// park remembers rs, a stopping checker's live targets in key order, as
// name's, departed at now. The members of an earlier parked set of name
// that rs does not hold, the addresses that checker left and this one
// never took back, stay remembered too: they keep their own age, but in
// the order of forgetting they count as departed now.
func (m *Memory) park(name string, rs []remembered, now time.Time) {
	if m == nil {
		return
	}
	for i := range rs {
		rs[i].at = now
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if old := m.parked[name]; old != nil {
		m.nPark -= old.live
		rs = union(rs, old, now)
	}
	if len(rs) == 0 {
		delete(m.parked, name)
		return
	}
	m.parked[name] = &parkedSet{at: now, rs: rs, gone: make([]bool, len(rs)), live: len(rs)}
	m.nPark += len(rs)
	m.trim()
}

// union merges the members of old still remembered at now into rs, both
// in key order; rs wins where both hold a key.
func union(rs []remembered, old *parkedSet, now time.Time) []remembered {
	out := make([]remembered, 0, len(rs)+old.live)
	i := 0
	for j, r := range old.rs {
		if old.gone[j] || now.Sub(r.at) >= MaxMemoryAge {
			continue
		}
		k := r.addr.Key()
		for i < len(rs) && rs[i].addr.Key().Compare(k) < 0 {
			out = append(out, rs[i])
			i++
		}
		if i < len(rs) && rs[i].addr.Key() == k {
			continue
		}
		out = append(out, r)
	}
	return append(out, rs[i:]...)
}

// find returns the index of k's member in p, or -1. A take in key order
// finds each member where the previous one left off; any other, by a
// binary search.
func (p *parkedSet) find(k resolver.Key) int {
	i := p.next
	if i >= len(p.rs) || p.rs[i].addr.Key() != k {
		i = sort.Search(len(p.rs), func(j int) bool { return p.rs[j].addr.Key().Compare(k) >= 0 })
		if i == len(p.rs) || p.rs[i].addr.Key() != k {
			return -1
		}
	}
	if p.gone[i] {
		return -1
	}
	p.next = i + 1
	return i
}

// lock and unlock hold m for a batch of takeLocked, one lock for a
// reconcile's new targets however many there are.
func (m *Memory) lock() {
	if m != nil {
		m.mu.Lock()
	}
}

func (m *Memory) unlock() {
	if m != nil {
		m.mu.Unlock()
	}
}

// takeLocked removes and returns name's state of k, unless it is older
// than MaxMemoryAge; m.mu is held.
func (m *Memory) takeLocked(name string, k resolver.Key, now time.Time) (*remembered, bool) {
	if m == nil {
		return nil, false
	}
	if p := m.parked[name]; p != nil {
		if i := p.find(k); i >= 0 {
			r := &p.rs[i]
			m.drop(name, p, i)
			return r, now.Sub(r.at) < MaxMemoryAge
		}
	}
	if m.names[name] == 0 {
		return nil, false
	}
	m.took = nil
	if !m.lru.Remove(memKey{name, k}) {
		return nil, false
	}
	r := m.took
	m.took = nil
	return r, now.Sub(r.at) < MaxMemoryAge
}

// peek returns name's state of k, leaving recency alone. The caller must
// not modify it.
func (m *Memory) peek(name string, k resolver.Key, now time.Time) (*remembered, bool) {
	if m == nil {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if p := m.parked[name]; p != nil {
		i := sort.Search(len(p.rs), func(j int) bool { return p.rs[j].addr.Key().Compare(k) >= 0 })
		if i < len(p.rs) && !p.gone[i] && p.rs[i].addr.Key() == k && now.Sub(p.rs[i].at) < MaxMemoryAge {
			return &p.rs[i], true
		}
	}
	return m.lru.Peek(memKey{name, k})
}

// all returns every state remembered for name. The caller must not modify
// them.
func (m *Memory) all(name string, now time.Time) []*remembered {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	out := make([]*remembered, 0, m.countLocked(name))
	if p := m.parked[name]; p != nil {
		for i := range p.rs {
			if !p.gone[i] && now.Sub(p.rs[i].at) < MaxMemoryAge {
				out = append(out, &p.rs[i])
			}
		}
	}
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
	return m.countLocked(name)
}

func (m *Memory) countLocked(name string) int {
	n := m.names[name]
	if p := m.parked[name]; p != nil {
		n += p.live
	}
	return n
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
	m.size = size
	m.lru.Resize(size)
	m.trim()
	return m
}
