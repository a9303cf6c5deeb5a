package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/rebuild"
	"github.com/vigil-go/vigil/resolver"
)

// baselineCheckHost is the baseline's configured check host. The gateway
// it models removed departed targets by this host instead of their own
// hostname, so they were never removed.
const baselineCheckHost = "healthcheck.demo.test"

// rebuildView drives the destroy-and-rebuild baseline from its own DNS
// source, on its world's bus: every Change throws the checker's state away
// and builds it anew.
type rebuildView struct {
	c       *rebuild.Checker
	src     *resolver.Source
	bus     *events.Bus
	name    string
	version atomic.Uint64

	mu  sync.Mutex
	dns []resolver.Address // the latest set, which traffic is spread over
}

func (v *rebuildView) target(a resolver.Address) (targetState, bool) {
	t, ok := v.c.Target(a)
	if !ok {
		return targetState{}, false
	}
	st := targetState{status: health.Unhealthy, successes: t.Successes, failures: t.Failures, lastProbe: t.LastProbe}
	if t.Healthy {
		st.status = health.Healthy
	}
	return st, true
}

func (v *rebuildView) remembered(resolver.Address) (health.Status, bool) { return 0, false }
func (v *rebuildView) applied() uint64                                   { return v.version.Load() }

func (v *rebuildView) run(ctx context.Context) error {
	unsub := events.Subscribe(v.bus, resolver.Topic(v.name), func(c resolver.Change) {
		v.c.SetTargets(c.Addresses)
		v.mu.Lock()
		v.dns = c.Addresses
		v.mu.Unlock()
		v.version.Store(c.Version)
	})
	defer unsub()
	var wg sync.WaitGroup
	var srcErr, chkErr error
	wg.Go(func() { chkErr = v.c.Run(ctx) })
	wg.Go(func() { srcErr = v.src.Run(ctx) })
	wg.Wait()
	return errors.Join(srcErr, chkErr)
}

// pick returns the next healthy address of the latest DNS set, round robin.
func (v *rebuildView) pick(n uint64) (resolver.Address, bool) {
	v.mu.Lock()
	set := v.dns
	v.mu.Unlock()
	var ok []resolver.Address
	for _, a := range set {
		if v.c.Healthy(a) {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		return resolver.Address{}, false
	}
	return ok[n%uint64(len(ok))], true
}

// rebuildTransport sends each request to an address the baseline holds
// healthy, keeping the URL's host as the Host header, and reports each
// outcome to the baseline, whose counters its probes share.
type rebuildTransport struct {
	v    *rebuildView
	base *http.Transport
	n    atomic.Uint64
}

func (t *rebuildTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, ok := t.v.pick(t.n.Add(1))
	if !ok {
		return nil, fmt.Errorf("%s: %w", t.v.name, errNoHealthyBaseline)
	}
	out := req.Clone(req.Context())
	out.Host = req.URL.Host
	out.URL.Host = a.HostPort()
	resp, err := t.base.RoundTrip(out)
	switch {
	case err == nil:
		t.v.c.ReportHTTPStatus(a, resp.StatusCode)
	case req.Context().Err() == nil: // not a request given up by its caller
		t.v.c.ReportFailure(a)
	}
	return resp, err
}

// CloseIdleConnections closes the idle connections to the backends.
func (t *rebuildTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// newRebuildWorld builds the baseline pipeline for name: resolver.Source ->
// events.Bus -> rebuild.Checker (rebuilt on every Change) -> round robin
// over its healthy addresses, whose outcomes feed the checker's counters.
func newRebuildWorld(sc scale, dns *dnstest.Server, name string, backends []*backendtest.Backend) (*world, error) {
	w := newWorld("rebuild", sc, dns, name, backends)
	src, err := w.newSource(sc)
	if err != nil {
		return nil, err
	}
	v := &rebuildView{
		c: rebuild.New(rebuild.Config{
			Path:      probePath,
			Interval:  sc.interval,
			Timeout:   sc.probeTimeout,
			Successes: 2,
			Failures:  2,
			Host:      baselineCheckHost,
		}),
		src:  src,
		bus:  w.bus,
		name: name,
	}
	w.view = v
	base := &http.Transport{MaxIdleConnsPerHost: 4}
	w.client = &http.Client{Transport: &rebuildTransport{v: v, base: base}, Timeout: sc.requestTimeout}
	w.finish(sc)
	return w, nil
}
