package balancer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Transport is an http.RoundTripper that sends each request to an address
// picked by a Balancer and reports the outcome to the balancer's checker.
//
// The request is sent unchanged: its URL's host stays the Host header (unless
// Request.Host overrides it) and the TLS server name, so virtual hosting and
// certificates work as without the balancer; only the TCP connection goes to
// the picked IP and port.
//
// Connections are pooled per picked address: each address gets its own
// http.Transport cloned from the base, whose dialer always dials that address.
// A request therefore only ever travels over a connection to the address its
// pick returned, and a target that turned unhealthy or left receives no new
// request over a pooled connection. When the balancer's snapshot changes,
// the next request closes the idle connections of addresses that are no
// longer candidates (a connection busy at that moment closes when it has been
// idle for the base's IdleConnTimeout). The price is one pool per address:
// base limits such as MaxIdleConnsPerHost apply per address, and requests are
// spread per request, not per connection.
//
// Outcomes: a response reports its status code (HTTPStatus); a refused,
// reset or closed connection reports ConnFailure; a timeout (also the
// request context's deadline) reports Timeout; a request whose context was
// canceled, or whose body failed to read, reports nothing. The request counts as in flight (for
// LeastRequest) until its response headers arrive. A failed request is not
// retried on another address: the error is returned as it came.
type Transport struct {
	b    *Balancer
	base *http.Transport

	mu    sync.RWMutex
	pools map[resolver.Key]*pool

	sweepMu sync.Mutex
	swept   atomic.Pointer[snapshot]
}

type pool struct {
	addr resolver.Address
	rt   *http.Transport
}

// NewTransport returns a Transport picking with b. base supplies the settings
// (TLS configuration, timeouts, pool limits) of every per-address pool; its
// Proxy, DialTLSContext and DialTLS are not used, its DialContext is used
// with the picked address. A nil base means a clone of
// http.DefaultTransport.
func NewTransport(b *Balancer, base *http.Transport) *Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	return &Transport{b: b, base: base.Clone(), pools: make(map[resolver.Key]*pool)}
}

// RoundTrip sends req to a picked healthy address. With none it returns an
// error matching ErrNoHealthy.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	call, err := t.b.PickCall()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	t.sweep()
	sent, body := watchBody(req)
	resp, err := t.poolFor(call.Address).RoundTrip(sent)
	if err != nil {
		if body != nil && body.failed.Load() {
			call.Done(Ignore) // the request body failed: the caller's fault, not the backend's
		} else {
			call.Done(classify(req.Context(), err))
		}
		return nil, err
	}
	call.Done(HTTPStatus(resp.StatusCode))
	return resp, nil
}

// CloseIdleConnections closes the idle connections of every pool.
func (t *Transport) CloseIdleConnections() {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range t.pools {
		p.rt.CloseIdleConnections()
	}
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
		return dial(ctx, network, hp)
	}
	return rt
}

// sweep closes idle connections to addresses that stopped being candidates,
// once per snapshot, and forgets pools of addresses that left the checker.
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
		if t.b.c.Status(p.addr) == health.Unknown {
			t.mu.Lock()
			if t.pools[p.addr.Key()] == p {
				delete(t.pools, p.addr.Key())
			}
			t.mu.Unlock()
			p.rt.CloseIdleConnections()
		}
	}
}

// classify maps a round trip's error to an Outcome.
func classify(ctx context.Context, err error) Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return Ignore
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ConnFailure
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ConnFailure
	}
	return Ignore
}
