package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// Paths the backends count apart: probes and traffic.
const (
	probePath   = "/healthz"
	trafficPath = "/api/"
)

// targetState is what a checker says about one address.
type targetState struct {
	status    health.Status // Healthy or Unhealthy
	successes int
	failures  int // the largest consecutive failure counter
	lastProbe time.Time
}

// view is the little the demo needs from a checker, vigil's or the baseline's.
type view interface {
	// target returns a's state and whether a is one of the checker's targets.
	target(a resolver.Address) (targetState, bool)
	// remembered returns the status a departed address would come back with.
	remembered(a resolver.Address) (health.Status, bool)
	// applied returns the Version of the last Change the checker applied.
	applied() uint64
	// run checks until ctx ends.
	run(ctx context.Context) error
}

// world is one upstream: a DNS name, its backends, the pipeline following
// it, the traffic sent through it, and an observer of what happens.
type world struct {
	label    string // "vigil" or "rebuild"
	name     string
	port     uint16
	backends []*backendtest.Backend
	dns      *dnstest.Server
	ttl      uint32

	bus     *events.Bus
	src     *resolver.Source
	checker *health.Checker // vigil's; nil for the baseline
	view    view
	client  *http.Client
	idle    func() // closes the traffic transport's idle connections
	gen     *generator
	obs     *observer
	shares  shares
	steps   []stepResult // what each step of the story showed, so far
	// Requests each backend had received when the current step began, by
	// index; play alone uses it.
	stepBase []int
}

// vigilView adapts health.Checker.
type vigilView struct{ c *health.Checker }

func (v vigilView) target(a resolver.Address) (targetState, bool) {
	t, ok := v.c.Target(a)
	if !ok {
		return targetState{}, false
	}
	return targetState{
		status:    t.Status,
		successes: t.Successes,
		failures:  max(t.HTTPFailures, t.TCPFailures, t.Timeouts),
		lastProbe: t.LastProbe,
	}, true
}

func (v vigilView) remembered(a resolver.Address) (health.Status, bool) {
	t, ok := v.c.Remembered(a)
	return t.Status, ok
}

func (v vigilView) applied() uint64               { return v.c.Stats().Version }
func (v vigilView) run(ctx context.Context) error { return v.c.Run(ctx) }

// newVigilWorld builds the real pipeline for name: resolver.Source ->
// events.Bus -> health.Checker -> balancer -> balancer.Transport.
func newVigilWorld(sc scale, dns *dnstest.Server, name string, backends []*backendtest.Backend) (*world, error) {
	w := newWorld("vigil", sc, dns, name, backends)
	c, err := health.NewChecker(vigilConfig(sc, name), w.bus)
	if err != nil {
		return nil, err
	}
	w.view, w.checker = vigilView{c}, c
	tr := balancer.NewTransport(balancer.New(c, balancer.WithBus(w.bus)), nil)
	w.client = &http.Client{Transport: tr, Timeout: sc.requestTimeout}
	w.idle = tr.CloseIdleConnections
	return w, w.finish(sc)
}

// vigilConfig is the configuration of vigil's checker for name.
func vigilConfig(sc scale, name string) health.Config {
	return health.Config{
		Name: name,
		Active: health.Active{
			Path:      probePath,
			Timeout:   sc.probeTimeout,
			Healthy:   health.HealthyRules{Interval: sc.interval, Successes: 2},
			Unhealthy: health.UnhealthyRules{Interval: sc.interval, HTTPFailures: 2},
		},
	}
}

// newWorld sets up what both kinds of world share.
func newWorld(label string, sc scale, dns *dnstest.Server, name string, backends []*backendtest.Backend) *world {
	return &world{
		label:    label,
		name:     name,
		port:     backends[0].Port,
		backends: backends,
		dns:      dns,
		ttl:      sc.ttl,
		bus:      events.New(),
	}
}

// finish creates the Source, the traffic generator and the observer, once
// the checker and the client exist.
func (w *world) finish(sc scale) error {
	src, err := resolver.NewSource(resolver.Config{
		Name:    w.name,
		Port:    w.port,
		Servers: []string{w.dns.Addr()},
		MinTTL:  sc.minTTL,
		Timeout: sc.dnsTimeout,
	}, w.bus)
	if err != nil {
		return err
	}
	w.src = src
	w.gen = newGenerator(w.client, "http://"+w.name+":"+strconv.Itoa(int(w.port))+trafficPath, sc.rate, sc.maxRequests())
	w.obs = newObserver(w, sc)
	w.shares.add(nil) // traffic shares count from here
	return nil
}

// setDNS makes the name resolve to the backends whose indexes are given.
func (w *world) setDNS(idx ...int) error {
	ips := make([]string, len(idx))
	addrs := make([]netip.Addr, len(idx))
	for i, n := range idx {
		addrs[i] = w.backends[n].IP
		ips[i] = addrs[i].String()
	}
	w.obs.recordsSet(addrs)
	return w.dns.SetA(w.name, w.ttl, ips...)
}

// ip returns backend i's IP.
func (w *world) ip(i int) netip.Addr { return w.backends[i].IP }

// setFailing makes backend i answer 500 (or 200 again) and tells the
// observer when that began or ended.
func (w *world) setFailing(i int, failing bool) {
	code := http.StatusOK
	if failing {
		code = http.StatusInternalServerError
	}
	w.obs.failing(w.backends[i].IP, failing, func() { w.backends[i].SetStatus(code) })
}

// run runs the source, the checker, the observer and the traffic until ctx
// ends, and waits for all of them. started is closed once they are running.
func (w *world) run(ctx context.Context, emit func(event)) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.view.run(ctx) })
	wg.Go(func() { _ = w.src.Run(ctx) })
	wg.Go(func() { w.obs.run(ctx, emit) })
	wg.Go(func() { w.gen.run(ctx) })
	wg.Wait()
	w.idle()
}

// startBackends starts five loopback backends sharing one port, on
// 127.0.0.11-15 or, when those cannot share a port, on the next free group
// of ten after skip.
func startBackends(skip int) ([]*backendtest.Backend, error) {
	var last error
	for base := 11; base+5 <= 255; base += 10 {
		if base <= skip {
			continue
		}
		bs, err := backendtest.StartGroup(netip.AddrFrom4([4]byte{127, 0, 0, byte(base)}), 5, nil)
		if err != nil {
			last = err
			continue
		}
		if slices.ContainsFunc(bs, func(b *backendtest.Backend) bool { return b.Port != bs[0].Port }) {
			backendtest.CloseAll(bs)
			last = fmt.Errorf("127.0.0.%d-%d cannot share a port", base, base+4)
			continue
		}
		return bs, nil
	}
	return nil, fmt.Errorf("no five loopback addresses sharing a port: %w", last)
}
