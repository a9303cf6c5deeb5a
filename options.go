package vigil

import (
	"log/slog"
	"net/http"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Option configures an Upstream, or every upstream of a Client, beyond its
// Config.
type Option func(*options)

type options struct {
	log      *slog.Logger
	bus      *events.Bus
	http     *http.Transport
	health   []health.Option
	resolver []resolver.Option
	memory   *health.Memory
}

func buildOptions(opts []Option) options {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger logs what every part of the upstream does to l: address-set
// changes, DNS failures and recoveries, status changes with their reasons.
// The default logs nothing; a nil l keeps it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithMemory keeps the state of the upstream's addresses in m, shared with
// every upstream given the same m, so that it outlives the upstream: when
// the upstream's Run ends it leaves the state of every address in m, and
// the next upstream of the same name given m starts from it, each address
// restored before any probe and then probed at once (see health.Memory).
// Departed addresses are remembered in m too, in place of the checker's
// own memory (Health.Memory is not used). Start the next upstream of a
// name only once the previous one's Run has returned. A Client and a
// vigilgrpc Builder keep a Memory of their own for all their upstreams;
// given this option, they use m instead.
func WithMemory(m *health.Memory) Option {
	return func(o *options) { o.memory = m }
}

// WithBus puts the upstream's events on bus, where a metrics.Collector or
// any subscriber can follow them, instead of on a bus of its own. A Client
// shares one bus among its upstreams. Topics of the upstream's name are
// released when its Run ends.
func WithBus(bus *events.Bus) Option {
	return func(o *options) { o.bus = bus }
}

// WithHTTPTransport sets the settings (TLS configuration, timeouts, pool
// limits) of the connection pools that Transport keeps per picked address;
// its Proxy and TLS dialers are not used. The default is a clone of
// http.DefaultTransport, or, when that is not an *http.Transport (an
// instrumentation wrapper), a transport with its documented settings.
func WithHTTPTransport(t *http.Transport) Option {
	return func(o *options) { o.http = t }
}

// WithHealthOptions passes options to the upstream's health.Checker
// (WithTLSConfig for HTTPS probes, WithMaxProbes); its logger is
// WithLogger's.
func WithHealthOptions(opts ...health.Option) Option {
	return func(o *options) { o.health = append(o.health, opts...) }
}

// WithResolverOptions passes options to the upstream's resolver.Source
// (WithResolvConf); its logger is WithLogger's.
func WithResolverOptions(opts ...resolver.Option) Option {
	return func(o *options) { o.resolver = append(o.resolver, opts...) }
}
