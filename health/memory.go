package health

import (
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vigil-go/vigil/resolver"
)

// remembered is the state of a departed target.
type remembered struct {
	addr  resolver.Address
	state state
}

// memory remembers departed targets, least recently departed evicted first.
// Only departed targets live here (live ones are in Checker.targets), so a
// live target can never be evicted. It has no eviction callback, so Remove
// and Purge have no side effects. A nil *memory remembers nothing.
type memory struct {
	cache *lru.Cache[resolver.Key, remembered]
}

// newMemory returns a memory of size entries, or nil when size < 1.
func newMemory(size int) *memory {
	if size < 1 {
		return nil
	}
	c, err := lru.New[resolver.Key, remembered](size)
	if err != nil { // only for size < 1, excluded above
		return nil
	}
	return &memory{cache: c}
}

// put remembers r under k.
func (m *memory) put(k resolver.Key, r remembered) {
	if m != nil {
		m.cache.Add(k, r)
	}
}

// take removes and returns what is remembered under k.
func (m *memory) take(k resolver.Key) (remembered, bool) {
	if m == nil {
		return remembered{}, false
	}
	r, ok := m.cache.Peek(k)
	if ok {
		m.cache.Remove(k)
	}
	return r, ok
}

// peek returns what is remembered under k, leaving recency alone.
func (m *memory) peek(k resolver.Key) (remembered, bool) {
	if m == nil {
		return remembered{}, false
	}
	return m.cache.Peek(k)
}

// len returns how many targets are remembered.
func (m *memory) len() int {
	if m == nil {
		return 0
	}
	return m.cache.Len()
}

// resize returns a memory of size entries keeping the most recent ones.
func (m *memory) resize(size int) *memory {
	switch {
	case size < 1:
		return nil
	case m == nil:
		return newMemory(size)
	}
	m.cache.Resize(size)
	return m
}
