package balancer

import (
	"log/slog"
	"time"

	"github.com/vigil-go/vigil/events"
)

// Option configures a Balancer: the rare knobs (WithClock, WithBus,
// WithLogger), and, for configurations written as a list of options,
// WithConfig or one Config field each. Options apply in order.
type Option func(*options)

type options struct {
	cfg   Config
	clock Clock
	bus   *events.Bus
	log   *slog.Logger
}

// Clock tells the time; WithClock injects one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// WithConfig sets the whole Config, replacing what earlier options set.
func WithConfig(c Config) Option {
	return func(o *options) { o.cfg = c }
}

// WithPolicy sets Config.Policy. An unknown policy is a *ConfigError.
func WithPolicy(p Policy) Option {
	return func(o *options) { o.cfg.Policy = p }
}

// WithPanicThreshold sets Config.PanicThreshold: f in (0, 1] turns on
// Envoy's priority levels with that panic threshold (see the package
// documentation), 0 turns the panic threshold off. A value outside [0, 1]
// or NaN is a *ConfigError.
func WithPanicThreshold(f float64) Option {
	return func(o *options) { o.cfg.PanicThreshold = f }
}

// WithOverprovisioningFactor turns on Envoy's priority levels with the
// overprovisioning factor f (Config.OverprovisioningFactor): a level whose
// healthy fraction times f is at least 1 is fully available, and traffic
// spills over to worse levels as that product drops below 1. Without a
// panic threshold no level panics. f = 0 sets Envoy's default, 1.4, as it
// always did; a negative f, NaN, or one outside [0.01, 1e6] is a
// *ConfigError.
func WithOverprovisioningFactor(f float64) Option {
	return func(o *options) {
		if f == 0 {
			f = float64(defaultOverprovision) / 100
		}
		o.cfg.OverprovisioningFactor = f
	}
}

// WithEWMADecay sets Config.EWMADecay, PeakEWMA's time constant: after d
// without a response a target's estimate is down to 1/e of what it was. 0
// means the default, 10s; a negative d is a *ConfigError.
func WithEWMADecay(d time.Duration) Option {
	return func(o *options) { o.cfg.EWMADecay = d }
}

// WithSlowStart sets Config.SlowStart: a target that was added or turned
// healthy ramps its share up over window; 0 turns slow start off. A
// negative window is a *ConfigError.
func WithSlowStart(window time.Duration) Option {
	return func(o *options) { o.cfg.SlowStart = window }
}

// WithClock sets the clock used by slow start and PeakEWMA; nil keeps the
// real clock.
func WithClock(c Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithBus makes Call.Done publish a Result on ResultTopic of the checker's
// upstream on bus. It costs Done one Publish (a lock of the bus and an
// allocation when someone follows the topic), next to a request that costs
// far more; Pick is unaffected. nil (the default) publishes nothing.
func WithBus(bus *events.Bus) Option {
	return func(o *options) { o.bus = bus }
}

// WithLogger logs to l what changes the balancer's picks as a whole: no
// healthy target left (with the reasons), healthy targets again, a priority
// level entering or leaving panic. It logs nothing per pick. The default,
// and nil, log nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}
