package balancer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/urlport"
	"github.com/vigil-go/vigil/resolver"
)

// Transport is an http.RoundTripper that sends each request for its
// upstream to an address picked by a Balancer and reports the outcome to the
// balancer's checker.
//
// Host rule: the Transport takes a request only when its URL's hostname,
// normalized as resolver.NormalizeName does, is the checker's upstream name
// and, under WithPort, its port (the explicit one, else the scheme's
// default) is the given one. Every other request, for example a redirect to
// another host, goes unchanged to the fallback (WithFallback; by default
// http.DefaultTransport) and never to one of the upstream's addresses.
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
// request over a pooled connection. Sweep closes the idle connections of
// addresses that are no longer candidates and drops the pools of addresses
// that left the checker; RoundTrip does the same at the first request after
// a change. The price is one pool per address: base limits such as
// MaxIdleConnsPerHost apply per address, and requests are spread per
// request, not per connection.
//
// Retries: a request whose connection failed before this request had a
// connection, so before any of it was written (connection refused, reset or
// timed out while dialing or during the TLS handshake, no route to the
// host), is sent again to another address (never one it was sent to
// before), up to WithTries addresses in all (2 by default), when its body
// can be replayed: no body, http.NoBody, or GetBody set — net/http's own
// replay rules; since nothing was written, the method does not matter. Each
// failure is reported. A request whose connection failed once it had one is
// not retried: the error is returned as it came.
//
// Outcomes: a response reports its status code (HTTPStatus); a 429 or 503
// with a Retry-After header that health.ParseRetryAfter reads reports
// Checker.ReportRetryAfter instead (Call.DoneRetryAfter); a refused, reset
// or closed connection reports ConnFailure; a timeout (also the request
// context's deadline) reports Timeout; a request whose context was
// canceled, or whose body failed to read, reports nothing. The request
// counts as in flight (for LeastRequest and PeakEWMA) until its response
// headers arrive, and that is the latency PeakEWMA measures.
type Transport struct {
	b           *Balancer
	base        *http.Transport
	name        string // the upstream's name, normalized
	port        uint16
	hasPort     bool
	fallback    http.RoundTripper
	ownFallback bool
	tries       int

	mu    sync.RWMutex
	pools map[resolver.Key]*pool

	sweepMu sync.Mutex // one sweep at a time
	swept   atomic.Pointer[snapshot]
}

// errNilURL is the error of a request without a URL, as net/http has one.
var errNilURL = errors.New("balancer: nil Request.URL")

// NewTransport returns a Transport picking with b. base supplies the settings
// (TLS configuration, timeouts, pool limits) of every per-address pool; its
// Proxy, DialTLSContext and DialTLS are not used, its DialContext is used
// with the picked address. A nil base means a clone of
// http.DefaultTransport.
func NewTransport(b *Balancer, base *http.Transport, opts ...TransportOption) *Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := &Transport{
		b:        b,
		base:     base.Clone(),
		name:     resolver.NormalizeName(b.c.Config().Name),
		fallback: http.DefaultTransport,
		tries:    defaultTries,
		pools:    make(map[resolver.Key]*pool),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// RoundTrip sends a request for the upstream to a picked healthy address,
// and any other request to the fallback. With no healthy address it returns
// an error matching ErrNoHealthy.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errNilURL
	}
	if !t.Serves(req.URL) {
		return t.fallback.RoundTrip(req)
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
		call, err := t.b.PickCallExcept(tried)
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
			call.Done(Ignore)
			return nil, lastErr // the body cannot be had again
		}
		resp, err := t.poolFor(call.Address).RoundTrip(sent)
		if err == nil {
			finish(call, resp)
			return resp, nil
		}
		o := classify(req.Context(), err)
		if a.bodyFailed() {
			o = Ignore // the request body failed: the caller's fault, not the backend's
		}
		call.Done(o)
		if !retryable(req.Context(), a, n < tries, err, o) {
			return nil, err
		}
		tried = append(tried, call.Address.Key())
		lastErr = err
	}
}

// Serves reports whether the Transport takes a request for u to its
// upstream's addresses (the host rule above); when it does not, the request
// goes to the fallback.
func (t *Transport) Serves(u *url.URL) bool {
	if resolver.NormalizeName(u.Hostname()) != t.name {
		return false
	}
	if !t.hasPort {
		return true
	}
	p, ok := urlport.Of(u)
	return ok && p == t.port
}

// finish reports a response's outcome.
func finish(call Call, resp *http.Response) {
	if code := resp.StatusCode; code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := health.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			call.DoneRetryAfter(code, d)
			return
		}
	}
	call.Done(HTTPStatus(resp.StatusCode))
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
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
