// Package metrics exports vigil's metrics to Prometheus.
//
// A Collector is fed from the events.Bus that the resolver, the health
// checker and the balancer of an application share: probe results
// (health.ProbeTopic), status changes (health.StatusTopic), DNS queries,
// failures and address sets (resolver.QueryTopic, resolver.FailureTopic,
// resolver.Topic) and request outcomes (balancer.ResultTopic, published by
// a balancer built with balancer.WithBus). Checkers added with AddChecker
// are also read at every scrape, for the figures that are state rather than
// events: targets by status, per-target health, Changes applied and ignored
// as stale. The OpenTelemetry package vigilotel counts the same events the
// same way (the counting is shared), so the two agree.
//
// The core packages do not import this package nor Prometheus: an
// application that does not want metrics does not link them.
//
//	bus := events.New()
//	// ... resolver.NewSource(cfg, bus), health.NewChecker(hcfg, bus),
//	// balancer.New(checker, balancer.WithBus(bus)) ...
//	col := metrics.New(bus)
//	col.AddChecker(checker) // also watches the checker's upstream on the bus
//	defer col.Close()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(col)
//	http.Handle("/metrics", metrics.Handler(reg))
//
// The Collector registers nothing by itself, never on the global
// prometheus.DefaultRegisterer: the caller registers it where it wants.
// Every metric is named vigil_* and carries an upstream label; the per-target
// ones (vigil_picks_total, vigil_target_healthy) also carry an address label
// ("hostname/ip:port"), one series per target, which WithoutAddressLabels
// turns off. docs/metrics.md lists every metric.
//
// # Counting
//
// Bus-fed counters count what is published after Watch (or AddChecker).
// The address set is state: vigil_dns_addresses takes the one the bus
// retains at Watch. Plain balancer Picks are not counted; requests through
// an Upstream's Transport, and balancer Calls that are Done, are.
//
// # Lifecycle and concurrency
//
// A Collector starts no goroutine: the bus delivers to it, and its counts
// and the checkers are read during Collect. Unwatch and Close unsubscribe and wait for deliveries
// in progress. All methods are safe for concurrent use.
package metrics
