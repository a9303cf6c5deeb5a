package vigilgrpc

import (
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
)

// Option configures a Builder beyond its template.
type Option func(*options)

type options struct {
	scheme        string
	log           *slog.Logger
	upstream      []vigil.Option
	bus           *events.Bus
	serviceConfig string
	failures      []codes.Code
	watch         *bool // nil: on when the template probes with the gRPC health service
}

// WithScheme sets the scheme of the Builder's targets (default Scheme,
// "vigil"): two Builders with different templates, A/AAAA and SRV say,
// serve one ClientConn's targets under two schemes. A scheme is lower
// case, as grpc-go matches it.
func WithScheme(s string) Option {
	return func(o *options) { o.scheme = s }
}

// WithLogger logs what the Builder does (upstreams started and stopped,
// resolution errors reported to a ClientConn) and, through
// vigil.WithLogger, what every upstream does, to l. The default logs
// nothing; a nil l keeps it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithUpstreamOptions passes options to every upstream the Builder makes
// (vigil.WithHealthOptions, ...). A vigil.WithBus among them is overridden:
// use WithBus. A vigil.WithMemory among them replaces the Memory the
// Builder keeps for its upstreams (of vigil.DefaultSharedMemory targets):
// one of another size, or one shared with a vigil.Client.
func WithUpstreamOptions(opts ...vigil.Option) Option {
	return func(o *options) { o.upstream = append(o.upstream, opts...) }
}

// WithBus puts the upstreams' events on bus, where a metrics.Collector can
// follow them (default: a bus of the Builder's own; see Builder.Bus). An
// upstream of a name another live upstream already has on it (another port
// or DNS server) gets a bus of its own: on one bus the two would take each
// other's address sets.
func WithBus(bus *events.Bus) Option {
	return func(o *options) { o.bus = bus }
}

// WithServiceConfig sets the service config (JSON) that the Builder's
// resolvers give every ClientConn, with its load balancing policy replaced
// by vigil's: method configs, retry policies and timeouts go here. A
// service config from the resolver takes the place of
// grpc.WithDefaultServiceConfig, so set them here rather than there. The
// default is the policy alone.
func WithServiceConfig(json string) Option {
	return func(o *options) { o.serviceConfig = json }
}

// WithFailureCodes sets the status codes that count as failures of the
// backend that served an RPC (passive HTTP failures), in place of
// DefaultFailureCodes(); none given: no code does. UNAVAILABLE and
// DEADLINE_EXCEEDED always count, as a connection failure and a timeout.
func WithFailureCodes(cs ...codes.Code) Option {
	return func(o *options) { o.failures = append([]codes.Code{}, cs...) }
}

// WithHealthWatch turns the health watch on or off. With it, every
// connection of the vigil policy keeps a grpc.health.v1 Watch stream open
// (grpc-go's client-side health checking, gRFC A17) and the server's every
// change of its serving status becomes the target's active verdict at
// once (health.Checker.SetActive), between the probes: a NOT_SERVING
// reaches the picker within a round trip instead of within a probe
// interval. It costs a stream and a goroutine per connection. By default
// it is on when the template probes with the gRPC health service (no
// probe chosen, or a *Prober without FailUnimplemented), for the same
// service name, and off otherwise.
func WithHealthWatch(on bool) Option {
	return func(o *options) { o.watch = &on }
}
