package balancer

import (
	"context"
	"net"
	"net/http"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// pool is the connection pool of one address.
type pool struct {
	addr resolver.Address
	rt   *http.Transport
}

// poolFor returns the pool of a, creating it on first use.
func (t *Transport) poolFor(a resolver.Address) *http.Transport {
	k := a.Key()
	t.mu.RLock()
	p := t.pools[k]
	t.mu.RUnlock()
	if p != nil {
		return p.rt
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p = t.pools[k]; p == nil {
		p = &pool{addr: a, rt: t.newPool(a)}
		t.pools[k] = p
	}
	return p.rt
}

func (t *Transport) newPool(a resolver.Address) *http.Transport {
	rt := t.base.Clone()
	rt.Proxy = nil
	rt.DialTLSContext = nil
	//lint:ignore SA1019 cleared so that it cannot bypass the picked address
	rt.DialTLS = nil
	dial := rt.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	hp := a.HostPort()
	rt.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		conn, err := dial(ctx, network, hp)
		if err != nil {
			return nil, &dialError{err} // nothing was written: a retry may follow
		}
		return conn, nil
	}
	return rt
}

// CloseIdleConnections closes the idle connections of every pool, and of
// the fallback when it was set with WithFallback.
func (t *Transport) CloseIdleConnections() {
	t.mu.RLock()
	for _, p := range t.pools {
		p.rt.CloseIdleConnections()
	}
	t.mu.RUnlock()
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok && t.ownFallback {
		c.CloseIdleConnections()
	}
}

// Sweep brings the pools up to date with the checker at once: it closes the
// idle connections of addresses that are no longer candidates and drops the
// pools of addresses that left the checker. A connection busy at that
// moment is closed as soon as its request is over: a pool whose idle
// connections were closed closes those that turn idle until it is used
// again (http.Transport.CloseIdleConnections). RoundTrip sweeps too,
// lazily, at the first request after the balancer's snapshot changed; an
// owner that watches Checker.Changed calls Sweep at every change so that
// nothing waits for a request.
func (t *Transport) Sweep() {
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	s := t.b.current()
	t.swept.Store(s)
	t.sweepLocked(s)
}

// sweep is Sweep once per snapshot, skipped while another sweep runs.
func (t *Transport) sweep() {
	s := t.b.snap.Load()
	if s == nil || t.swept.Load() == s || !t.sweepMu.TryLock() {
		return
	}
	defer t.sweepMu.Unlock()
	if t.swept.Load() == s {
		return
	}
	t.swept.Store(s)
	t.sweepLocked(s)
}

// sweepLocked sweeps against snapshot s; t.sweepMu is held.
func (t *Transport) sweepLocked(s *snapshot) {
	cand := make(map[resolver.Key]struct{})
	s.candidates(func(a resolver.Address) { cand[a.Key()] = struct{}{} })
	var stale []*pool
	t.mu.RLock()
	for k, p := range t.pools {
		if _, ok := cand[k]; !ok {
			stale = append(stale, p)
		}
	}
	t.mu.RUnlock()
	for _, p := range stale {
		p.rt.CloseIdleConnections()
		if t.b.c.Status(p.addr) != health.Unknown {
			continue
		}
		t.mu.Lock()
		if t.pools[p.addr.Key()] == p {
			delete(t.pools, p.addr.Key())
		}
		t.mu.Unlock()
	}
}
