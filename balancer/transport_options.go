package balancer

import "net/http"

// TransportOption configures a Transport.
type TransportOption func(*Transport)

// WithPort makes the Transport take only requests whose URL port (the
// explicit one, else 80 for http and 443 for https) is p, besides naming the
// upstream's host; requests for any other port go to the fallback. Without
// it any port matches, as an SRV upstream's targets carry their own ports.
func WithPort(p uint16) TransportOption {
	return func(t *Transport) { t.port, t.hasPort = p, true }
}

// WithFallback sets the RoundTripper that receives every request the
// Transport does not take (another host, or another port under WithPort).
// nil keeps the default, http.DefaultTransport. A fallback set here also
// has its idle connections closed by the Transport's CloseIdleConnections.
func WithFallback(rt http.RoundTripper) TransportOption {
	return func(t *Transport) {
		t.fallback, t.ownFallback = http.DefaultTransport, false
		if rt != nil {
			t.fallback, t.ownFallback = rt, true
		}
	}
}

// WithTries sets how many addresses a request may be sent to in all when
// its connection fails before anything was written (see Transport); 1 turns
// retries off. n < 1 keeps the default, 2.
func WithTries(n int) TransportOption {
	return func(t *Transport) {
		t.tries = defaultTries
		if n >= 1 {
			t.tries = n
		}
	}
}

// defaultTries is how many addresses a request may be sent to by default.
const defaultTries = 2
