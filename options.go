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
	memory   *health.Memory // WithMemory; nil: each checker's own
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

// WithMemory makes the upstream's checker remember departed targets in m
// (health.WithMemory) instead of in a memory of its own, and leave its live
// targets' state there when its Run returns: a new Upstream of the same
// name given m then continues from the old one's state, restored before
// any probe and probed at once (DESIGN R9). m keeps entries by (name,
// address), so upstreams of other names never take each other's. Start
// the next upstream of a name once the last one's Run has returned: two
// running at once overwrite each other's entries of the addresses they
// share, the last to stop winning. How long state is kept is m's: at most
// its size of departed targets, across names, and none longer than
// health.MaxMemoryAge.
//
// A Client and a vigilgrpc Builder keep one Memory for all their
// upstreams (see ClientConfig.Memory); WithMemory gives them m instead.
// An upstream whose Config.Health.Memory is negative remembers nothing, m
// or not. A nil m changes nothing.
func WithMemory(m *health.Memory) Option {
	return func(o *options) {
		if m != nil {
			o.memory = m
		}
	}
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
