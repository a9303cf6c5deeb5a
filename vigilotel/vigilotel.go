package vigilotel

import (
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dnsconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/tally"
)

// ScopeName is the name of the instrumentation scope (the Meter) of every
// instrument this package makes.
const ScopeName = "github.com/vigil-go/vigil/vigilotel"

// ErrInvalidConfig is matched (errors.Is) by every configuration error of
// New.
var ErrInvalidConfig = errors.New("vigilotel: invalid config")

// ConfigError reports an invalid argument of New. It matches
// ErrInvalidConfig with errors.Is.
type ConfigError struct {
	Field  string // "MeterProvider"
	Reason string
	Err    error // the cause; may be nil
}

// Error implements error.
func (e *ConfigError) Error() string {
	return "vigilotel: invalid config: " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// Option configures Metrics.
type Option func(*options)

type options struct {
	perTarget bool
}

// WithoutTargetAttributes drops the per-target measurements:
// vigil.target.requests is not reported. Use it when upstreams have
// thousands of targets.
func WithoutTargetAttributes() Option {
	return func(o *options) { o.perTarget = false }
}

// Metrics reports vigil's metrics to an OpenTelemetry MeterProvider. Create
// it with New, tell it which upstreams to follow with Watch or AddChecker,
// and Close it when done.
type Metrics struct {
	t         *tally.Tally
	perTarget bool

	// Recorded from the Tally's Observer, one measurement per event.
	probeDuration  metric.Float64Histogram
	lookupDuration metric.Float64Histogram
	httpDuration   metric.Float64Histogram
	rpcDuration    metric.Float64Histogram

	// Read from the Tally by the callback, at each collection.
	targets        metric.Int64ObservableUpDownCounter
	statusChanges  metric.Int64ObservableCounter
	ejected        metric.Int64ObservableUpDownCounter
	ejections      metric.Int64ObservableCounter
	remembered     metric.Int64ObservableUpDownCounter
	targetRequests metric.Int64ObservableCounter
	activeProbes   metric.Int64ObservableUpDownCounter
	droppedProbes  metric.Int64ObservableCounter
	requests       metric.Int64ObservableCounter
	failures       metric.Int64ObservableCounter
	addresses      metric.Int64ObservableUpDownCounter
	changes        metric.Int64ObservableCounter
	version        metric.Int64ObservableGauge

	reg       metric.Registration
	closeOnce sync.Once
	closeErr  error
}

// New returns Metrics that will report the upstreams watched on bus to a
// Meter of mp named ScopeName. It makes the instruments and registers the
// callback of the observable ones; it subscribes to nothing until Watch or
// AddChecker, and starts no goroutine. A nil mp is an error matching
// ErrInvalidConfig; an instrument mp refuses is an error too.
func New(bus *events.Bus, mp metric.MeterProvider, opts ...Option) (*Metrics, error) {
	if mp == nil {
		return nil, &ConfigError{Field: "MeterProvider", Reason: "nil"}
	}
	o := options{perTarget: true}
	for _, opt := range opts {
		opt(&o)
	}
	meter := mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	m := &Metrics{perTarget: o.perTarget}
	if err := m.instruments(meter); err != nil {
		return nil, fmt.Errorf("vigilotel: %w", err)
	}
	reg, err := meter.RegisterCallback(m.observe, m.observables()...)
	if err != nil {
		return nil, fmt.Errorf("vigilotel: %w", err)
	}
	m.reg = reg
	var topts []tally.Option
	if !o.perTarget {
		topts = append(topts, tally.WithoutTargets())
	}
	m.t = tally.New(bus, tally.Observer{Probe: m.probe, Query: m.query, Request: m.request}, topts...)
	return m, nil
}

// instruments makes every instrument on meter.
func (m *Metrics) instruments(meter metric.Meter) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.probeDuration, err = meter.Float64Histogram(probeDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of active probes whose outcome the checker applied."),
		metric.WithExplicitBucketBoundaries(tally.Buckets...))
	keep(err)
	lookup, err := dnsconv.NewLookupDuration(meter, metric.WithExplicitBucketBoundaries(conventionBuckets...))
	m.lookupDuration = lookup.Inst()
	keep(err)
	http, err := httpconv.NewClientRequestDuration(meter)
	m.httpDuration = http.Inst()
	keep(err)
	rpc, err := rpcconv.NewClientCallDuration(meter)
	m.rpcDuration = rpc.Inst()
	keep(err)

	upDown := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		i, err := meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return i
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		i, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return i
	}
	m.targets = upDown(targetCount, "{target}", "Live targets, by status.")
	m.statusChanges = counter(targetStatusChanges, "{change}", "Target status changes, by the status changed to.")
	m.ejected = upDown(targetEjected, "{target}", "Live targets whose passive verdict is an ejection.")
	m.ejections = counter(targetEjections, "{ejection}", "Passive ejections started: failure thresholds, Retry-After and outliers.")
	m.remembered = upDown(targetRemembered, "{target}", "Departed targets whose state is remembered.")
	m.targetRequests = counter(targetRequests, "{request}", "Requests whose outcome the balancer reported, by picked target.")
	m.activeProbes = upDown(probeActive, "{probe}", "Active probes in flight.")
	m.droppedProbes = counter(probeDropped, "{probe}", "Active probes whose outcome was dropped: target removed or probe settings changed.")
	m.requests = counter(requests, "{request}", "Requests whose outcome the balancer reported, by outcome.")
	m.failures = counter(dnsFailures, "{failure}", "Resolutions that failed (the last good address set was kept), by reason.")
	m.addresses = upDown(dnsAddressCount, "{address}", "Addresses in the last address set the DNS source published.")
	m.changes = counter(dnsChanges, "{change}", "Address sets the checker received: applied, or ignored as stale.")
	m.version, err = meter.Int64ObservableGauge(dnsVersion, metric.WithUnit("{version}"),
		metric.WithDescription("Version of the last address set the checker applied."))
	keep(err)
	return errors.Join(errs...)
}

// observables returns the instruments the callback observes.
func (m *Metrics) observables() []metric.Observable {
	return []metric.Observable{m.targets, m.statusChanges, m.ejected, m.ejections, m.remembered,
		m.targetRequests, m.activeProbes, m.droppedProbes, m.requests, m.failures, m.addresses,
		m.changes, m.version}
}

// Watch follows upstream name on the bus: probe results and status changes
// of its checker, queries, failures and address sets of its DNS source,
// results of its balancer. Watching a name twice does nothing. Events
// published before Watch are not counted; the address set the bus retains
// is.
func (m *Metrics) Watch(name string) { m.t.Watch(name) }

// AddChecker watches the checker's upstream (see Watch) and reports its
// state at every collection: targets by status, ejected and remembered
// targets, probes in flight and dropped, address sets applied and
// ignored, and the version applied. Adding a second checker of the same
// upstream replaces the first.
func (m *Metrics) AddChecker(ch *health.Checker) { m.t.AddChecker(ch) }

// Unwatch stops following upstream name: it unsubscribes, waits for
// deliveries in progress and forgets its checker; its observable
// instruments are no longer reported.
func (m *Metrics) Unwatch(name string) { m.t.Unwatch(name) }

// Close unsubscribes from everything, waits for deliveries in progress and
// unregisters the callback from the Meter: once it returns, nothing is
// recorded and the Meter no longer calls back (a collection already in
// progress may finish its call). Watch and AddChecker then do nothing.
// Close is idempotent; it returns the Meter's error unregistering, if any.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		m.t.Close()
		m.closeErr = m.reg.Unregister()
	})
	return m.closeErr
}
