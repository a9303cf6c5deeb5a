package fleet

import (
	"context"
	"strings"
	"sync"
	"time"
)

// memStore is a store in memory: the store interface's contract without
// NATS, for the writer's tests and to run the verdict logic on another
// engine. TTLs are not enforced.
type memStore struct {
	mu       sync.Mutex
	rev      uint64
	keys     map[string]*change
	watches  []*memWatch
	failures []error // returned by the next puts, one each
	puts     int
}

func newMemStore() *memStore { return &memStore{keys: map[string]*change{}} }

func (m *memStore) bucket() string { return "memory" }

func (m *memStore) put(_ context.Context, key string, value []byte, rev uint64, _ time.Duration) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if len(m.failures) > 0 {
		err := m.failures[0]
		m.failures = m.failures[1:]
		return 0, err
	}
	var cur uint64
	if c := m.keys[key]; c != nil {
		cur = c.rev
	}
	if rev != cur {
		return 0, errRevision
	}
	return m.set(&change{key: key, value: value}), nil
}

// set stores c as key's latest change and tells the watches; m.mu is held.
func (m *memStore) set(c *change) uint64 {
	m.rev++
	c.rev, c.at = m.rev, time.Now()
	m.keys[c.key] = c
	for _, w := range m.watches {
		w.send(c)
	}
	return c.rev
}

func (m *memStore) get(_ context.Context, key string) (*change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.keys[key]; c != nil {
		cp := *c
		return &cp, nil
	}
	return nil, errNoKey
}

func (m *memStore) remove(_ context.Context, key string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.keys[key]
	if c == nil || c.rev != rev {
		return errRevision
	}
	m.set(&change{key: key, removed: "deleted"})
	return nil
}

// write puts value under key by hand, whatever its revision.
func (m *memStore) write(key string, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set(&change{key: key, value: value})
}

func (m *memStore) watch(ctx context.Context, patterns []string) (watch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &memWatch{patterns: patterns, out: make(chan *change, 4096)}
	for _, c := range m.keys {
		w.send(c)
	}
	w.out <- nil
	m.watches = append(m.watches, w)
	return w, nil
}

// memWatch is a watch of a memStore; its buffer is large enough for a
// test's changes.
type memWatch struct {
	patterns []string
	mu       sync.Mutex
	stopped  bool
	out      chan *change
}

func (w *memWatch) send(c *change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	for _, p := range w.patterns {
		if matches(p, c.key) {
			cp := *c
			w.out <- &cp
			return
		}
	}
}

func (w *memWatch) changes() <-chan *change { return w.out }

func (w *memWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// matches reports whether key matches pattern: tokens separated by dots,
// "*" one token, ">" the rest.
func matches(pattern, key string) bool {
	ps, ks := strings.Split(pattern, "."), strings.Split(key, ".")
	for i, p := range ps {
		switch {
		case p == ">":
			return len(ks) > i
		case i >= len(ks):
			return false
		case p != "*" && p != ks[i]:
			return false
		}
	}
	return len(ps) == len(ks)
}
