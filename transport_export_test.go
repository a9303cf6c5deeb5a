package vigil

import (
	"net/http"
	"net/url"

	"github.com/vigil-go/vigil/resolver"
)

// Hooks into an Upstream's transport for the tests of package vigil_test.

// SetTransportTries sets how many addresses a request of rt may be sent to.
func SetTransportTries(rt http.RoundTripper, n int) { rt.(*transport).tries = n }

// SweepTransport sweeps rt's pools now.
func SweepTransport(rt http.RoundTripper) { rt.(*transport).Sweep() }

// TransportHasPool reports whether rt holds a pool for a.
func TransportHasPool(rt http.RoundTripper, a resolver.Address) bool {
	t := rt.(*transport)
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.pools[a.Key()] != nil
}

// TransportServes reports whether rt takes a request for u to its upstream.
func TransportServes(rt http.RoundTripper, u *url.URL) bool { return rt.(*transport).serves(u) }

// Classify is classify.
var Classify = classify
