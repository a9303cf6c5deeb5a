package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// DefaultBuckets are the bucket bounds, in seconds, of the probe and DNS
// query duration histograms: from half a millisecond (loopback) to five
// seconds (beyond any default timeout).
var DefaultBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Option configures a Collector.
type Option func(*options)

type options struct {
	perTarget bool
}

// WithoutAddressLabels drops the per-target series: vigil_picks_total is
// then counted per upstream only and vigil_target_healthy is not exported.
// Use it when upstreams have thousands of targets.
func WithoutAddressLabels() Option {
	return func(o *options) { o.perTarget = false }
}

// Collector is a prometheus.Collector of vigil's metrics. Create it with
// New, tell it which upstreams to follow with Watch or AddChecker, and
// register it on a prometheus.Registerer of your own.
type Collector struct {
	bus       *events.Bus
	perTarget bool

	// life serializes Watch, AddChecker, Unwatch and Close, so that an
	// Unwatch deleting an upstream's series cannot interleave with a Watch
	// of the same upstream caching new ones.
	life sync.Mutex

	// Fed from the bus.
	probes       *prometheus.CounterVec   // upstream, outcome
	probeSeconds *prometheus.HistogramVec // upstream
	transitions  *prometheus.CounterVec   // upstream, to
	queries      *prometheus.CounterVec   // upstream, type, result
	querySeconds *prometheus.HistogramVec // upstream
	failures     *prometheus.CounterVec   // upstream, reason
	requests     *prometheus.CounterVec   // upstream, outcome
	picks        *prometheus.CounterVec   // upstream[, address]

	// Read from checkers at scrape time.
	targets       *prometheus.Desc // upstream, status
	targetHealthy *prometheus.Desc // upstream, address
	remembered    *prometheus.Desc // upstream
	inFlight      *prometheus.Desc // upstream
	changes       *prometheus.Desc // upstream, result
	version       *prometheus.Desc // upstream
	dropped       *prometheus.Desc // upstream
	ejected       *prometheus.Desc // upstream
	ejections     *prometheus.Desc // upstream

	mu       sync.Mutex // guards the fields below
	watches  map[string]*watch
	checkers map[string]*health.Checker
	closed   bool
}

// watch is the subscriptions of one upstream.
type watch struct {
	unsubs []func()

	mu      sync.RWMutex // held for reading by handlers; for writing to stop them
	stopped bool

	pmu    sync.Mutex
	picked map[string]prometheus.Counter // by address label
}

// New returns a Collector of the upstreams that will be watched on bus.
// It subscribes to nothing until Watch or AddChecker, and starts no
// goroutine: bus-fed metrics are updated by the bus's deliveries, checker
// metrics are read when the collector is scraped.
func New(bus *events.Bus, opts ...Option) *Collector {
	o := options{perTarget: true}
	for _, opt := range opts {
		opt(&o)
	}
	up := []string{"upstream"}
	pickLabels := up
	if o.perTarget {
		pickLabels = []string{"upstream", "address"}
	}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: DefaultBuckets}, up)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		bus:       bus,
		perTarget: o.perTarget,

		probes: counter("vigil_probes_total",
			"Active probes whose outcome the checker applied, by outcome.", []string{"upstream", "outcome"}),
		probeSeconds: histogram("vigil_probe_duration_seconds",
			"Duration of active probes whose outcome the checker applied."),
		transitions: counter("vigil_status_transitions_total",
			"Target status changes, by the status changed to.", []string{"upstream", "to"}),
		queries: counter("vigil_dns_queries_total",
			"DNS queries sent, by query type and result (ok or the error's class).", []string{"upstream", "type", "result"}),
		querySeconds: histogram("vigil_dns_query_duration_seconds",
			"Duration of DNS queries, answered or not."),
		failures: counter("vigil_dns_failures_total",
			"Resolutions that failed (the last good address set was kept), by reason.", []string{"upstream", "reason"}),
		requests: counter("vigil_requests_total",
			"Requests whose outcome the balancer reported, by outcome.", []string{"upstream", "outcome"}),
		picks: counter("vigil_picks_total",
			"Requests whose outcome the balancer reported, by picked target.", pickLabels),

		targets: desc("vigil_targets",
			"Live targets, by status.", "upstream", "status"),
		targetHealthy: desc("vigil_target_healthy",
			"1 if the target is healthy, 0 if unhealthy.", "upstream", "address"),
		remembered: desc("vigil_targets_remembered",
			"Departed targets whose state is remembered.", "upstream"),
		inFlight: desc("vigil_probes_in_flight",
			"Active probes in flight.", "upstream"),
		changes: desc("vigil_changes_total",
			"Address-set Changes the checker received: applied, or ignored as stale.", "upstream", "result"),
		version: desc("vigil_address_set_version",
			"Version of the last address-set Change the checker applied.", "upstream"),
		dropped: desc("vigil_probes_dropped_total",
			"Active probes whose outcome was dropped: target removed or probe settings changed.", "upstream"),
		ejected: desc("vigil_targets_ejected",
			"Live targets whose passive verdict is an ejection.", "upstream"),
		ejections: desc("vigil_ejections_total",
			"Passive ejections started: failure thresholds, Retry-After and outliers.", "upstream"),

		watches:  make(map[string]*watch),
		checkers: make(map[string]*health.Checker),
	}
}

// Watch subscribes to the bus topics of upstream name: probe results and
// status changes of its checker, queries and failures of its DNS source,
// results of its balancer (built with balancer.WithBus). Watching a name
// twice does nothing. Values published before Watch are not counted.
func (c *Collector) Watch(name string) {
	c.life.Lock()
	defer c.life.Unlock()
	c.watch(name)
}

// watch is Watch; c.life is held.
func (c *Collector) watch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.watches[name] != nil {
		return
	}
	w := &watch{picked: make(map[string]prometheus.Counter)}
	c.watches[name] = w

	probes := [...]prometheus.Counter{
		health.ProbeIgnored:     c.probes.WithLabelValues(name, health.ProbeIgnored.String()),
		health.ProbeSuccess:     c.probes.WithLabelValues(name, health.ProbeSuccess.String()),
		health.ProbeHTTPFailure: c.probes.WithLabelValues(name, health.ProbeHTTPFailure.String()),
		health.ProbeTCPFailure:  c.probes.WithLabelValues(name, health.ProbeTCPFailure.String()),
		health.ProbeTimeout:     c.probes.WithLabelValues(name, health.ProbeTimeout.String()),
	}
	probeSeconds := c.probeSeconds.WithLabelValues(name)
	querySeconds := c.querySeconds.WithLabelValues(name)

	w.unsubs = append(w.unsubs,
		follow(c.bus, health.ProbeTopic(name), w, func(r health.ProbeResult) {
			if int(r.Outcome) >= 0 && int(r.Outcome) < len(probes) {
				probes[r.Outcome].Inc()
			} else {
				c.probes.WithLabelValues(name, r.Outcome.String()).Inc()
			}
			probeSeconds.Observe(r.Duration.Seconds())
		}),
		follow(c.bus, health.StatusTopic(name), w, func(s health.StatusChange) {
			if s.From != s.To { // not a verdict that changed under the other's Unhealthy
				c.transitions.WithLabelValues(name, s.To.String()).Inc()
			}
		}),
		follow(c.bus, resolver.QueryTopic(name), w, func(q resolver.Query) {
			c.queries.WithLabelValues(name, q.Type, errorClass(q.Err)).Inc()
			querySeconds.Observe(q.Duration.Seconds())
		}),
		follow(c.bus, resolver.FailureTopic(name), w, func(f resolver.Failure) {
			c.failures.WithLabelValues(name, errorClass(f.Err)).Inc()
		}),
		follow(c.bus, balancer.ResultTopic(name), w, func(r balancer.Result) {
			c.requests.WithLabelValues(name, requestOutcome(r.Outcome)).Inc()
			c.pickCounter(name, w, r.Address).Inc()
		}),
	)
}

// pickCounter returns the picks counter of a in upstream name.
func (c *Collector) pickCounter(name string, w *watch, a resolver.Address) prometheus.Counter {
	if !c.perTarget {
		return c.picks.WithLabelValues(name)
	}
	label := a.String()
	w.pmu.Lock()
	defer w.pmu.Unlock()
	ctr := w.picked[label]
	if ctr == nil {
		ctr = c.picks.WithLabelValues(name, label)
		w.picked[label] = ctr
	}
	return ctr
}

// AddChecker watches the checker's upstream (see Watch) and exports its
// state at every scrape: targets by status, per-target health, remembered
// targets, probes in flight, Changes applied and ignored, the address-set
// version and dropped probes. Adding a second checker of the same upstream
// replaces the first.
//
// While a checker is added, the per-target pick series of an address that
// is no longer one of its targets are deleted at the next scrape, so
// addresses that come and go do not accumulate series.
func (c *Collector) AddChecker(ch *health.Checker) {
	name := ch.Config().Name
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.checkers[name] = ch
	c.mu.Unlock()
	c.watch(name)
}

// Unwatch stops following upstream name: it unsubscribes, forgets its
// checker and deletes every series of the upstream.
func (c *Collector) Unwatch(name string) {
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	w := c.watches[name]
	delete(c.watches, name)
	delete(c.checkers, name)
	c.mu.Unlock()
	if w != nil {
		w.stop()
	}
	c.deleteSeries(name)
}

// Close unsubscribes from everything; Watch and AddChecker then do nothing.
// The series collected so far stay. Close is idempotent.
func (c *Collector) Close() {
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	c.closed = true
	ws := c.watches
	c.watches = make(map[string]*watch)
	c.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

// stop unsubscribes and waits for handlers in progress, so that no series
// is touched after it returns.
func (w *watch) stop() {
	for _, u := range w.unsubs {
		u()
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

func (c *Collector) deleteSeries(name string) {
	l := prometheus.Labels{"upstream": name}
	for _, v := range c.fed() {
		v.DeletePartialMatch(l)
	}
}

// fedVec is a metric vector fed from the bus.
type fedVec interface {
	prometheus.Collector
	DeletePartialMatch(prometheus.Labels) int
}

// fed returns the vectors fed from the bus.
func (c *Collector) fed() []fedVec {
	return []fedVec{c.probes, c.probeSeconds, c.transitions, c.queries,
		c.querySeconds, c.failures, c.requests, c.picks}
}

// follow subscribes fn to topic on bus while w is not stopped. Every
// topic followed is an event topic, so nothing published before the
// subscription is delivered: nothing is counted twice across Unwatch and
// Watch.
func follow[T any](bus *events.Bus, topic events.Topic[T], w *watch, fn func(T)) func() {
	return events.Subscribe(bus, topic, func(v T) {
		w.mu.RLock()
		defer w.mu.RUnlock()
		if !w.stopped {
			fn(v)
		}
	})
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.fed() {
		v.Describe(ch)
	}
	ch <- c.targets
	if c.perTarget {
		ch <- c.targetHealthy
	}
	ch <- c.remembered
	ch <- c.inFlight
	ch <- c.changes
	ch <- c.version
	ch <- c.dropped
	ch <- c.ejected
	ch <- c.ejections
}

// Collect implements prometheus.Collector. It reads the state of every
// added checker; the bus-fed series are as the deliveries left them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	type upstream struct {
		name string
		ch   *health.Checker
		w    *watch
	}
	ups := make([]upstream, 0, len(c.checkers))
	for name, hc := range c.checkers {
		ups = append(ups, upstream{name, hc, c.watches[name]})
	}
	c.mu.Unlock()

	for _, u := range ups {
		c.collectChecker(ch, u.name, u.ch, u.w)
	}
	for _, v := range c.fed() {
		v.Collect(ch)
	}
}

func (c *Collector) collectChecker(ch chan<- prometheus.Metric, name string, hc *health.Checker, w *watch) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := hc.Stats()
	ts := hc.Targets()
	var healthy, unhealthy int
	live := make(map[string]bool, len(ts))
	for _, t := range ts {
		up := 0.0
		if t.Status == health.Healthy {
			healthy++
			up = 1
		} else {
			unhealthy++
		}
		if c.perTarget {
			label := t.Address.String()
			live[label] = true
			gauge(c.targetHealthy, up, name, label)
		}
	}
	gauge(c.targets, float64(healthy), name, health.Healthy.String())
	gauge(c.targets, float64(unhealthy), name, health.Unhealthy.String())
	gauge(c.remembered, float64(st.Remembered), name)
	gauge(c.inFlight, float64(st.InFlight), name)
	counter(c.changes, st.ChangesApplied, name, "applied")
	counter(c.changes, st.ChangesIgnored, name, "ignored")
	gauge(c.version, float64(st.Version), name)
	counter(c.dropped, st.ProbesDropped, name)
	gauge(c.ejected, float64(st.Ejected), name)
	counter(c.ejections, st.Ejections, name)

	if c.perTarget && w != nil {
		w.pmu.Lock()
		for label := range w.picked {
			if !live[label] {
				c.picks.DeleteLabelValues(name, label)
				delete(w.picked, label)
			}
		}
		w.pmu.Unlock()
	}
}
