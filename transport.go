package vigil

import (
	"errors"
	"net/http"
	"weak"

	"github.com/vigil-go/vigil/balancer"
)

// Transport returns an http.RoundTripper that sends each request for this
// upstream (its URL's host is the upstream's name and, for A/AAAA, its port
// the upstream's, explicitly or as the scheme's default) to a healthy
// address, and every other request — a redirect to another host, say — to
// base (nil: http.DefaultTransport), never to this upstream's addresses.
//
// A request that arrives before the name was first resolved waits for it
// within its context instead of failing; if resolving fails first, the
// request fails with that DNS error. After that, a request finding no
// healthy address fails at once with an error matching
// balancer.ErrNoHealthy. A request whose connection fails before anything
// was written is sent to another healthy address (see balancer.Transport),
// and every outcome counts in the passive verdict.
//
// Each call returns a RoundTripper with connection pools of its own, kept
// clean of addresses that left while Run runs: make one and reuse it, as
// with an http.Transport. The upstream does not keep a dropped one alive.
func (u *Upstream) Transport(base http.RoundTripper) http.RoundTripper { return u.transport(base) }

func (u *Upstream) transport(base http.RoundTripper) *transport {
	if base == nil {
		base = http.DefaultTransport
	}
	opts := []balancer.TransportOption{balancer.WithFallback(base)}
	if u.port != 0 {
		opts = append(opts, balancer.WithPort(u.port))
	}
	bt := balancer.NewTransport(u.bal, u.pools, opts...)
	u.mu.Lock()
	u.transports = append(u.transports, weak.Make(bt))
	u.mu.Unlock()
	return &transport{u: u, bt: bt}
}

// transport waits for the upstream to settle before its first request.
type transport struct {
	u  *Upstream
	bt *balancer.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("vigil: request without a URL")
	}
	if !t.u.hasSettled.Load() && t.bt.Serves(req.URL) {
		if err := t.u.settled(req.Context()); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	return t.bt.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every pool, and of
// base when it can.
func (t *transport) CloseIdleConnections() { t.bt.CloseIdleConnections() }
