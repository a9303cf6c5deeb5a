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

	"github.com/vigil-go/vigil"
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
	// verdicts says what each source of the status holds, where the
	// checker keeps them apart; empty where it does not.
	verdicts string
}

// view is the little the demo needs from a checker, vigil's or the baseline's.
type view interface {
	// target returns a's state and whether a is one of the checker's targets.
	target(a resolver.Address) (targetState, bool)
	// remembered returns the status a departed address would come back with.
	remembered(a resolver.Address) (health.Status, bool)
	// applied returns the Version of the last Change the checker applied.
	applied() uint64
	// run runs the pipeline, the DNS source and the checker, until ctx
	// ends, and returns once all of it stopped.
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
	checker *health.Checker // vigil's; nil for the baseline
	view    view
	client  *http.Client // the traffic's; its transport's idle connections close at the end
	gen     *generator
	obs     *observer
	shares  shares
	steps   []stepResult // what each step of the story showed, so far
	// Requests each backend had received when the current step began, by
	// index; play alone uses it.
	stepBase []int
}

// vigilView adapts an upstream built by vigil.New: its checker answers,
// its Run runs it all.
type vigilView struct {
	c *health.Checker
	u *vigil.Upstream
}

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
		verdicts:  fmt.Sprintf("active verdict %s, passive %s", t.Active, t.Passive),
	}, true
}

func (v vigilView) remembered(a resolver.Address) (health.Status, bool) {
	t, ok := v.c.Remembered(a)
	return t.Status, ok
}

func (v vigilView) applied() uint64               { return v.c.Stats().Version }
func (v vigilView) run(ctx context.Context) error { return v.u.Run(ctx) }

// newVigilWorld builds vigil's world for name: one vigil.New, whose
// Transport carries the traffic (resolver.Source -> events.Bus ->
// health.Checker -> balancer -> balancer.Transport inside).
func newVigilWorld(sc scale, dns *dnstest.Server, name string, backends []*backendtest.Backend, opts ...vigil.Option) (*world, error) {
	w := newWorld("vigil", sc, dns, name, backends)
	cfg := vigilConfig(sc, name, w.port, dns.Addr())
	u, err := vigil.New(cfg, append([]vigil.Option{vigil.WithBus(w.bus)}, opts...)...)
	if err != nil {
		return nil, err
	}
	w.view, w.checker = vigilView{c: u.Checker(), u: u}, u.Checker()
	w.client = &http.Client{Transport: u.Transport(nil), Timeout: sc.requestTimeout}
	w.finish(sc)
	return w, nil
}

// vigilConfig is the configuration of vigil's upstream for name: A
// records of the story's DNS server, probes of probePath.
func vigilConfig(sc scale, name string, port uint16, server string) vigil.Config {
	return vigil.Config{
		Name: name,
		Port: port,
		Resolver: resolver.Config{
			Family:  resolver.IPv4Only, // the backends are on 127.0.0.X
			Servers: []string{server},
			MinTTL:  sc.minTTL,
			Timeout: sc.dnsTimeout,
		},
		Health: vigilHealth(sc),
	}
}

// vigilHealth is the configuration of vigil's checks: probes every
// interval, two in a row to change the active verdict; the passive
// verdict, from the traffic, keeps its defaults.
func vigilHealth(sc scale) health.Config {
	return health.Config{
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

// newSource returns a DNS source for w's name, as vigil's world configures
// its own: the baseline follows the same DNS the same way.
func (w *world) newSource(sc scale) (*resolver.Source, error) {
	rc := vigilConfig(sc, w.name, w.port, w.dns.Addr()).Resolver
	rc.Name, rc.Port = w.name, w.port
	return resolver.NewSource(rc, w.bus)
}

// finish creates the traffic generator and the observer, once the pipeline
// and the client exist.
func (w *world) finish(sc scale) {
	w.gen = newGenerator(w.client, "http://"+w.name+":"+strconv.Itoa(int(w.port))+trafficPath, sc.rate, sc.maxRequests())
	w.obs = newObserver(w, sc)
	w.shares.add(nil) // traffic shares count from here
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

// setFailing makes backend i answer 500 to every request (or 200 again)
// and tells the observer when that began or ended.
func (w *world) setFailing(i int, failing bool) {
	code := http.StatusOK
	if failing {
		code = http.StatusInternalServerError
	}
	w.obs.failing(w.backends[i].IP, failing, false, func() { w.backends[i].SetStatus(code) })
}

// setCheckFailing makes backend i's health endpoint, probePath, answer 500
// (or stop doing so) while its traffic keeps its answers, and tells the
// observer when that began or ended.
func (w *world) setCheckFailing(i int, failing bool) {
	code := 0 // no override
	if failing {
		code = http.StatusInternalServerError
	}
	w.obs.failing(w.backends[i].IP, failing, true, func() { w.backends[i].SetPathStatus(probePath, code) })
}

// run runs the pipeline, the observer and the traffic until ctx ends, and
// waits for all of them.
func (w *world) run(ctx context.Context, emit func(event)) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.view.run(ctx) })
	wg.Go(func() { w.obs.run(ctx, emit) })
	wg.Go(func() { w.gen.run(ctx) })
	wg.Wait()
	w.client.CloseIdleConnections()
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
