package vigil

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// pool is the connection pool of one address.
type pool struct {
	addr resolver.Address
	rt   *http.Transport
}

// poolTemplate returns the settings of an Upstream's pools: a clone of t,
// else of http.DefaultTransport when it is an *http.Transport, else (a
// wrapper for instrumentation, a test double) a new http.Transport with
// http.DefaultTransport's documented settings.
func poolTemplate(t *http.Transport) *http.Transport {
	if t != nil {
		return t.Clone()
	}
	if d, ok := http.DefaultTransport.(*http.Transport); ok {
		return d.Clone()
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// poolFor returns the pool of a, creating it on first use.
func (t *transport) poolFor(a resolver.Address) *http.Transport {
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

// newPool returns a pool with the template's settings whose dialer always
// dials a; the template's Proxy and TLS dialers, which could bypass it, are
// not used.
func (t *transport) newPool(a resolver.Address) *http.Transport {
	rt := t.proto.Clone()
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

// closePools closes the idle connections of the transport's own pools and
// of nothing else: an upstream that stops idle must not close the
// keep-alive connections its base (often http.DefaultTransport, shared by
// the whole process) keeps for other hosts.
func (t *transport) closePools() {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range t.pools {
		p.rt.CloseIdleConnections()
	}
}

// Sweep brings the pools up to date with the checker at once: it closes
// the idle connections of addresses that are no longer candidates and
// drops the pools of addresses that left the checker. A connection busy at
// that moment is closed as soon as its request is over: a pool whose idle
// connections were closed closes those that turn idle until it is used
// again (http.Transport.CloseIdleConnections). Run calls it at every change
// of the checker; RoundTrip sweeps too, at the first request after a
// change, in case Run has not yet.
func (t *transport) Sweep() {
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	t.sweepLocked()
}

// sweep is Sweep once per checker generation, skipped while another sweep
// runs.
func (t *transport) sweep() {
	if t.swept.Load() == t.u.chk.Generation()+1 || !t.sweepMu.TryLock() {
		return
	}
	defer t.sweepMu.Unlock()
	if t.swept.Load() == t.u.chk.Generation()+1 {
		return
	}
	t.sweepLocked()
}

// sweepLocked sweeps; t.sweepMu is held.
func (t *transport) sweepLocked() {
	gen := t.u.chk.Generation() // before reading the candidates: a change after it sweeps again
	t.mu.RLock()
	pools := make([]*pool, 0, len(t.pools))
	for _, p := range t.pools {
		pools = append(pools, p)
	}
	t.mu.RUnlock()
	for _, p := range pools {
		if t.u.bal.Candidate(p.addr) {
			continue
		}
		p.rt.CloseIdleConnections()
		if t.u.chk.Status(p.addr) != health.Unknown {
			continue
		}
		t.mu.Lock()
		if t.pools[p.addr.Key()] == p {
			delete(t.pools, p.addr.Key())
		}
		t.mu.Unlock()
	}
	t.swept.Store(gen + 1)
}
