package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/rebuild"
	"github.com/vigil-go/vigil/resolver"
)

// pipeline is what a world's story drives and asks: DNS source, checker and
// balancer for the world's name.
type pipeline struct {
	about     string
	run       func(context.Context) error // until ctx ends
	transport http.RoundTripper           // carries the traffic
	status    func(resolver.Address) health.Status
	applied   func() uint64   // Version of the last Change the checker applied
	checker   *health.Checker // for -metrics; nil when there is none
	upstream  *vigil.Upstream // for -http; nil when there is none
}

// builder makes a world's pipeline: its checker reports status changes on
// bus (health.StatusTopic) or to w.statusChanged.
type builder struct {
	label string
	build func(w *world, bus *events.Bus) (pipeline, error)
}

// vigilPipeline is one vigil.New upstream, its Transport carrying the
// traffic: probes every interval, two in a row change the active verdict;
// the passive verdict, from the traffic, keeps its defaults.
func vigilPipeline(w *world, bus *events.Bus) (pipeline, error) {
	u, err := vigil.New(vigil.Config{
		Name:     w.name,
		Port:     w.port,
		Resolver: w.resolverConfig(),
		Health: health.Config{Active: health.Active{
			Path:      probePath,
			Timeout:   w.t.probeTimeout,
			Healthy:   health.HealthyRules{Interval: w.t.interval, Successes: 2},
			Unhealthy: health.UnhealthyRules{Interval: w.t.interval, HTTPFailures: 2},
		}},
	}, vigil.WithBus(bus))
	if err != nil {
		return pipeline{}, err
	}
	c := u.Checker()
	return pipeline{
		about:     "one vigil.New upstream (DNS source, checker, balancer) and its Transport; active and passive verdicts kept apart",
		run:       u.Run,
		transport: u.Transport(nil),
		status:    c.Status,
		applied:   func() uint64 { return c.Stats().Version },
		checker:   c,
		upstream:  u,
	}, nil
}

// baselineHost is the baseline's configured check host. The gateway it
// models removed departed targets by this host instead of their own
// hostname, so they were never removed.
const baselineHost = "healthcheck.demo.test"

// baselinePipeline is the destroy-and-rebuild checker (internal/rebuild),
// rebuilt at every Change of the same DNS source, with the same probes and
// thresholds; the traffic's outcomes count on its probes' counters, as
// lua-resty-healthcheck counts them.
func baselinePipeline(w *world, bus *events.Bus) (pipeline, error) {
	src, err := resolver.NewSource(w.resolverConfig(), bus)
	if err != nil {
		return pipeline{}, err
	}
	c := rebuild.New(rebuild.Config{
		Path: probePath, Interval: w.t.interval, Timeout: w.t.probeTimeout, Successes: 2, Failures: 2, Host: baselineHost,
		OnChange: func(a resolver.Address, healthy bool) {
			from, to := health.Healthy, health.Unhealthy
			if healthy {
				from, to = to, from
			}
			w.statusChanged(a, from, to, "")
		},
	})
	var version atomic.Uint64
	return pipeline{
		about: "the same DNS source; a checker destroyed and rebuilt at every change (internal/rebuild), probes and traffic on one set of counters",
		run: func(ctx context.Context) error {
			defer events.Subscribe(bus, resolver.Topic(w.name), func(ch resolver.Change) {
				c.SetTargets(ch.Addresses)
				version.Store(ch.Version)
			})()
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() { _ = src.Run(ctx) })
			return c.Run(ctx)
		},
		transport: c.Transport(&http.Transport{}),
		status: func(a resolver.Address) health.Status {
			switch t, ok := c.Target(a); {
			case !ok:
				return health.Unknown
			case t.Healthy:
				return health.Healthy
			}
			return health.Unhealthy
		},
		applied: version.Load,
	}, nil
}
