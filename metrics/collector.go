package metrics

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/tally"
	"github.com/vigil-go/vigil/resolver"
)

// DefaultBuckets are the bucket bounds, in seconds, of the probe and DNS
// query duration histograms: from half a millisecond (loopback) to five
// seconds (beyond any default timeout).
var DefaultBuckets = slices.Clone(tally.Buckets)

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
	t         *tally.Tally // counts what the bus delivers, reads the checkers
	perTarget bool

	// life serializes Watch, AddChecker and Unwatch, so that an Unwatch
	// deleting an upstream's histograms cannot interleave with a Watch of
	// the same upstream.
	life sync.Mutex

	// Observed from the Tally's Observer: durations, in this collector's
	// buckets.
	probeSeconds *prometheus.HistogramVec // upstream
	querySeconds *prometheus.HistogramVec // upstream

	// Read from the Tally at scrape time.
	probes        *prometheus.Desc // upstream, outcome
	transitions   *prometheus.Desc // upstream, to
	queries       *prometheus.Desc // upstream, type, result
	failures      *prometheus.Desc // upstream, reason
	requests      *prometheus.Desc // upstream, outcome
	picks         *prometheus.Desc // upstream[, address]
	addresses     *prometheus.Desc // upstream
	targets       *prometheus.Desc // upstream, status
	targetHealthy *prometheus.Desc // upstream, address
	remembered    *prometheus.Desc // upstream
	inFlight      *prometheus.Desc // upstream
	changes       *prometheus.Desc // upstream, result
	version       *prometheus.Desc // upstream
	dropped       *prometheus.Desc // upstream
	ejected       *prometheus.Desc // upstream
	ejections     *prometheus.Desc // upstream
}

// New returns a Collector of the upstreams that will be watched on bus.
// It subscribes to nothing until Watch or AddChecker, and starts no
// goroutine: the bus's deliveries are counted as they come, and read with
// the checkers' state when the collector is scraped.
func New(bus *events.Bus, opts ...Option) *Collector {
	o := options{perTarget: true}
	for _, opt := range opts {
		opt(&o)
	}
	pickLabels := []string{"upstream"}
	var topts []tally.Option
	if o.perTarget {
		pickLabels = append(pickLabels, "address")
	} else {
		topts = append(topts, tally.WithoutTargets())
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: DefaultBuckets}, []string{"upstream"})
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	c := &Collector{
		perTarget: o.perTarget,

		probeSeconds: histogram("vigil_probe_duration_seconds",
			"Duration of active probes whose outcome the checker applied."),
		querySeconds: histogram("vigil_dns_query_duration_seconds",
			"Duration of DNS queries, answered or not."),

		probes: desc("vigil_probes_total",
			"Active probes whose outcome the checker applied, by outcome.", "upstream", "outcome"),
		transitions: desc("vigil_status_transitions_total",
			"Target status changes, by the status changed to.", "upstream", "to"),
		queries: desc("vigil_dns_queries_total",
			"DNS queries sent, by query type and result (ok or the error's class).", "upstream", "type", "result"),
		failures: desc("vigil_dns_failures_total",
			"Resolutions that failed (the last good address set was kept), by reason.", "upstream", "reason"),
		requests: desc("vigil_requests_total",
			"Requests whose outcome the balancer reported, by outcome.", "upstream", "outcome"),
		picks: desc("vigil_picks_total",
			"Requests whose outcome the balancer reported, by picked target.", pickLabels...),
		addresses: desc("vigil_dns_addresses",
			"Addresses in the last address set the DNS source published.", "upstream"),

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
	}
	c.t = tally.New(bus, tally.Observer{
		Probe: func(p tally.Probe) { c.probeSeconds.WithLabelValues(p.Upstream).Observe(p.Duration.Seconds()) },
		Query: func(q tally.Query) { c.querySeconds.WithLabelValues(q.Upstream).Observe(q.Duration.Seconds()) },
	}, topts...)
	return c
}

// Watch subscribes to the bus topics of upstream name: probe results and
// status changes of its checker, queries, failures and address sets of its
// DNS source, results of its balancer (built with balancer.WithBus).
// Watching a name twice does nothing. Values published before Watch are
// not counted.
func (c *Collector) Watch(name string) {
	c.life.Lock()
	defer c.life.Unlock()
	if c.t.Watch(name) {
		c.touch(resolver.NormalizeName(name))
	}
}

// touch makes the upstream's histograms exist from the start, empty.
func (c *Collector) touch(name string) {
	c.probeSeconds.WithLabelValues(name)
	c.querySeconds.WithLabelValues(name)
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
	c.life.Lock()
	defer c.life.Unlock()
	if c.t.AddChecker(ch) {
		c.touch(ch.Config().Name)
	}
}

// Unwatch stops following upstream name: it unsubscribes, forgets its
// checker and deletes every series of the upstream.
func (c *Collector) Unwatch(name string) {
	c.life.Lock()
	defer c.life.Unlock()
	c.t.Unwatch(name) // no Observer call for name after it returns
	l := prometheus.Labels{"upstream": resolver.NormalizeName(name)}
	c.probeSeconds.DeletePartialMatch(l)
	c.querySeconds.DeletePartialMatch(l)
}

// Close unsubscribes from everything; Watch and AddChecker then do nothing.
// It waits for deliveries in progress. The series collected so far stay.
// Close is idempotent.
func (c *Collector) Close() { c.t.Close() }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.probeSeconds.Describe(ch)
	c.querySeconds.Describe(ch)
	for _, d := range []*prometheus.Desc{c.probes, c.transitions, c.queries, c.failures,
		c.requests, c.picks, c.addresses, c.targets, c.remembered, c.inFlight, c.changes,
		c.version, c.dropped, c.ejected, c.ejections} {
		ch <- d
	}
	if c.perTarget {
		ch <- c.targetHealthy
	}
}

// Collect implements prometheus.Collector. It reads the counts of every
// watched upstream and the state of every added checker.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.t.Read() {
		c.collect(ch, u)
	}
	c.probeSeconds.Collect(ch)
	c.querySeconds.Collect(ch)
}

func (c *Collector) collect(ch chan<- prometheus.Metric, u tally.Upstream) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	name := u.Name
	for outcome, n := range u.Probes {
		counter(c.probes, n, name, outcome)
	}
	for to, n := range u.Transitions {
		counter(c.transitions, n, name, to)
	}
	for k, n := range u.Queries {
		counter(c.queries, n, name, k.Type, k.Result)
	}
	for reason, n := range u.Failures {
		counter(c.failures, n, name, reason)
	}
	var requests uint64
	for outcome, n := range u.Requests {
		counter(c.requests, n, name, outcome)
		requests += n
	}
	if c.perTarget {
		for k, n := range u.Picks {
			counter(c.picks, n, name, resolver.Address{IP: k.IP, Port: k.Port, Hostname: k.Hostname}.String())
		}
	} else if len(u.Requests) > 0 {
		counter(c.picks, requests, name)
	}
	if u.Resolved {
		gauge(c.addresses, float64(u.Addresses), name)
	}

	s := u.Checker
	if s == nil {
		return
	}
	for _, t := range s.Targets {
		up := 0.0
		if t.Healthy {
			up = 1
		}
		gauge(c.targetHealthy, up, name, t.Address.String())
	}
	gauge(c.targets, float64(s.Healthy), name, health.Healthy.String())
	gauge(c.targets, float64(s.Unhealthy), name, health.Unhealthy.String())
	gauge(c.remembered, float64(s.Stats.Remembered), name)
	gauge(c.inFlight, float64(s.Stats.InFlight), name)
	counter(c.changes, s.Stats.ChangesApplied, name, "applied")
	counter(c.changes, s.Stats.ChangesIgnored, name, "ignored")
	gauge(c.version, float64(s.Stats.Version), name)
	counter(c.dropped, s.Stats.ProbesDropped, name)
	gauge(c.ejected, float64(s.Stats.Ejected), name)
	counter(c.ejections, s.Stats.Ejections, name)
}
