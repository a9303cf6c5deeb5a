package vigil

import (
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/internal/urlport"
	"github.com/vigil-go/vigil/resolver"
)

// Transport returns an http.RoundTripper that sends each request for this
// upstream to a healthy address, and every other request — a redirect to
// another host, say — to base (nil: http.DefaultTransport), never to this
// upstream's addresses.
//
// Host rule: a request is this upstream's when its URL's hostname,
// normalized as resolver.NormalizeName does, is the upstream's name and,
// for A/AAAA, its port (the explicit one, else the scheme's default) is the
// upstream's; an SRV upstream's targets carry their own ports, so any port
// matches. The Host header and TLS server name stay the URL's (unless
// Request.Host overrides the header), so virtual hosting and certificates
// work as without vigil; only the TCP connection goes to the picked IP and
// port.
//
// A request that arrives before the name was first resolved waits for it
// within its context instead of failing; if resolving fails first, the
// request fails with that DNS error. After that, a request finding no
// healthy address fails at once with a *balancer.NoHealthyError (matching
// balancer.ErrNoHealthy) that says why.
//
// Connections are pooled per picked address: each address gets its own
// http.Transport with the settings of WithHTTPTransport (by default those
// of http.DefaultTransport, or, when that is not an *http.Transport, its
// documented settings), whose dialer always dials that address. A request
// therefore only ever travels over a connection to the address its pick
// returned, and a target that turned unhealthy or left receives no new
// request over a pooled connection: while Run runs, every change of the
// checker closes the idle connections of addresses that are no longer
// candidates and drops the pools of addresses that left (a connection busy
// then is closed once its request is over), and a request after a change
// does the same if Run has not yet. The price is one pool per address:
// limits such as MaxIdleConnsPerHost apply per address, and requests are
// spread per request, not per connection.
//
// Retries: a request whose connection failed before this request had a
// connection, so before any of it was written (connection refused, reset or
// timed out while dialing or during the TLS handshake, no route to the
// host), is sent again to another healthy address (never one it was sent
// to before), up to 2 addresses in all, when its body can be replayed: no
// body, http.NoBody, or GetBody set (net/http's own replay rules; since
// nothing was written, the method does not matter). Each failure is
// reported. A request whose connection failed once it had one is not
// retried: the error is returned as it came.
//
// Outcomes count in the target's passive verdict: a response reports its
// status code; a 429 or 503 with a Retry-After header that
// health.ParseRetryAfter reads reports Checker.ReportRetryAfter instead; a
// refused, reset or closed connection reports a TCP failure; a timeout
// (also the request context's deadline) a timeout; a request whose context
// was canceled, or whose body failed to read (the caller's failure, not the
// backend's), reports nothing. The request counts as in flight (for
// balancer.LeastRequest and balancer.PeakEWMA, and balancer.Balancer.Loads)
// until its response headers arrive, and that is the latency PeakEWMA
// measures.
//
// Each call returns a RoundTripper with connection pools of its own: make
// one and reuse it, as with an http.Transport. The upstream does not keep a
// dropped one alive. Its CloseIdleConnections closes the idle connections
// of its pools and of base.
func (u *Upstream) Transport(base http.RoundTripper) http.RoundTripper { return u.transport(base) }

func (u *Upstream) transport(base http.RoundTripper) *transport {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &transport{
		u:     u,
		base:  base,
		proto: poolTemplate(u.pools),
		tries: defaultTries,
		pools: make(map[resolver.Key]*pool),
	}
	u.mu.Lock()
	u.transports = append(u.transports, weak.Make(t))
	u.mu.Unlock()
	return t
}

// transport is an Upstream's http.RoundTripper.
type transport struct {
	u     *Upstream
	base  http.RoundTripper // every request that is not the upstream's
	proto *http.Transport   // the settings of every pool, never used itself
	tries int               // how many addresses a request may be sent to

	mu    sync.RWMutex
	pools map[resolver.Key]*pool

	sweepMu sync.Mutex    // one sweep at a time
	swept   atomic.Uint64 // 1 + the checker generation last swept; 0: none
}

// defaultTries is how many addresses a request may be sent to.
const defaultTries = 2

// errNilURL is the error of a request without a URL, as net/http has one.
var errNilURL = errors.New("vigil: request without a URL")

// RoundTrip sends a request for the upstream to a picked healthy address,
// and any other request to base.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errNilURL
	}
	if !t.serves(req.URL) {
		return t.base.RoundTrip(req)
	}
	if !t.u.hasSettled.Load() {
		if err := t.u.settled(req.Context()); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	t.sweep()
	tries := t.tries
	if !replayable(req) {
		tries = 1
	}
	var buf [4]resolver.Key
	tried := buf[:0]
	var lastErr error
	for n := 1; ; n++ {
		call, err := t.u.bal.PickCallExcept(tried)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr // no other address to try
			}
			closeBody(req)
			return nil, err
		}
		// Only HTTPS needs a trace to tell a failed handshake (net/http's)
		// from a failure after the request was written; a plain dial failure
		// is marked by the pool's dialer.
		sent, a, err := prepare(req, n > 1, n < tries && req.URL.Scheme == "https")
		if err != nil {
			call.Done(balancer.Ignore)
			return nil, lastErr // the body cannot be had again
		}
		resp, err := t.poolFor(call.Address).RoundTrip(sent)
		if err == nil {
			finish(call, resp)
			return resp, nil
		}
		o := classify(req.Context(), err)
		if a.bodyFailed() {
			o = balancer.Ignore // the request body failed: the caller's fault, not the backend's
		}
		call.Done(o)
		if !retryable(req.Context(), a, n < tries, err, o) {
			return nil, err
		}
		tried = append(tried, call.Address.Key())
		lastErr = err
	}
}

// serves reports whether a request for u is the upstream's (the host rule
// of Upstream.Transport).
func (t *transport) serves(u *url.URL) bool {
	if resolver.NormalizeName(u.Hostname()) != t.u.name {
		return false
	}
	if t.u.port == 0 {
		return true
	}
	p, ok := urlport.Of(u)
	return ok && p == t.u.port
}

// CloseIdleConnections closes the idle connections of every pool, and of
// base when it has such a method.
func (t *transport) CloseIdleConnections() {
	t.closePools()
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
