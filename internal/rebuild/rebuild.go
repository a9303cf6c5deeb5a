// Package rebuild is the destroy-and-rebuild health checker that vigil
// replaces, kept as a baseline for benchmarks and comparisons: every change
// of the target set throws all state away and builds a new checker whose
// targets all start healthy, to be probed from scratch.
//
// Like lua-resty-healthcheck, which it models, it counts the outcomes of its
// probes and those of the traffic (passive reports: ReportHTTPStatus,
// ReportFailure) on one set of counters per target: a success from either
// source resets the consecutive failures of both, and each source turns the
// target healthy or unhealthy when the shared counter reaches that source's
// threshold. A backend whose health endpoint fails while its traffic
// succeeds therefore stays healthy as long as a traffic success lands
// between any two probes: the probes' failures never add up.
//
// Its balancer (Pick, Transport) round-robins over the healthy addresses
// of the last set given to SetTargets, as the gateway's balancer picks from
// its own node list, not from the checker's targets.
//
// Its methods are safe for concurrent use.
package rebuild

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Config configures the baseline. Zero values: Path "/", Interval 1s,
// Timeout 1s, Successes 2, Failures 2, PassiveSuccesses 5, PassiveFailures
// 5. A probe succeeds when it gets a 2xx or 3xx status.
type Config struct {
	Path     string
	Interval time.Duration
	Timeout  time.Duration
	// Successes and Failures are the probes' thresholds: consecutive
	// successes that make an unhealthy target healthy, consecutive failures
	// that make a healthy one unhealthy.
	Successes int
	Failures  int
	// PassiveSuccesses and PassiveFailures are the thresholds of the
	// traffic's outcomes (lua-resty-healthcheck's passive defaults). They
	// are compared with the same counters as the probes' thresholds.
	PassiveSuccesses int
	PassiveFailures  int
	// Host is the configured check host: the Host header of every probe
	// (default: the target's Hostname). When set, a rebuild also matches
	// departed targets by it, as the gateway this baseline models did:
	// a departed target whose Hostname differs is never matched, so it stays
	// in the new checker and keeps being probed.
	Host string
	// OnChange, when set, is called, outside the checker's lock, each time
	// an outcome turns a target healthy or unhealthy; calls for outcomes
	// counted concurrently come in no promised order. A rebuild changes
	// statuses silently, as the gateway it models did: no call.
	OnChange func(a resolver.Address, healthy bool)
}

// ErrNoHealthy is the error of Pick's RoundTripper when no address is
// healthy.
var ErrNoHealthy = errors.New("rebuild: no healthy target")

// Target is a snapshot of one target of the current checker.
type Target struct {
	Address   resolver.Address
	Healthy   bool
	Successes int       // consecutive, probes and traffic together
	Failures  int       // consecutive, probes and traffic together
	LastProbe time.Time // when the last probe started; zero if none has
}

// Checker is the baseline checker.
type Checker struct {
	cfg    Config
	client *http.Client

	mu   sync.Mutex
	cur  *checker           // replaced wholesale by SetTargets
	set  []resolver.Address // the last set given to SetTargets, which Pick picks from
	next atomic.Uint64      // Pick's round robin
}

// checker is one generation: built for one target set, never updated.
type checker struct {
	targets map[resolver.Address]*entry
	due     dueHeap
}

type entry struct {
	addr      resolver.Address
	healthy   bool
	successes int
	failures  int
	next      time.Time
	last      time.Time
}

type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// New returns a baseline checker with no targets.
func New(cfg Config) *Checker {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Successes <= 0 {
		cfg.Successes = 2
	}
	if cfg.Failures <= 0 {
		cfg.Failures = 2
	}
	if cfg.PassiveSuccesses <= 0 {
		cfg.PassiveSuccesses = 5
	}
	if cfg.PassiveFailures <= 0 {
		cfg.PassiveFailures = 5
	}
	return &Checker{
		cfg:    cfg,
		client: &http.Client{Transport: &http.Transport{}},
		cur:    build(nil, time.Now()),
	}
}

// build makes a new generation: every target healthy and due now.
func build(addrs []resolver.Address, now time.Time) *checker {
	c := &checker{targets: make(map[resolver.Address]*entry, len(addrs)), due: make(dueHeap, 0, len(addrs))}
	for _, a := range addrs {
		e := &entry{addr: a, healthy: true, next: now}
		c.targets[a] = e
		c.due = append(c.due, e)
	}
	heap.Init(&c.due)
	return c
}

// SetTargets destroys the current checker and builds one for addrs (plus,
// when Config.Host is set, the departed targets that removal by that host
// does not match).
func (c *Checker) SetTargets(addrs []resolver.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set = addrs
	if c.cfg.Host != "" {
		keep := make(map[resolver.Address]bool, len(addrs))
		for _, a := range addrs {
			keep[a] = true
		}
		for a := range c.cur.targets {
			if !keep[a] && a.Hostname != c.cfg.Host {
				addrs = append(addrs[:len(addrs):len(addrs)], a)
				keep[a] = true
			}
		}
	}
	c.cur = build(addrs, time.Now())
}

// Target returns a snapshot of a's state and whether a is a target.
func (c *Checker) Target(a resolver.Address) (Target, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cur.targets[a]
	if e == nil {
		return Target{}, false
	}
	return Target{Address: e.addr, Healthy: e.healthy, Successes: e.successes, Failures: e.failures, LastProbe: e.last}, true
}

// Healthy reports whether a is a healthy target.
func (c *Checker) Healthy(a resolver.Address) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cur.targets[a]
	return e != nil && e.healthy
}

// Len returns the number of targets.
func (c *Checker) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur.targets)
}

// Run probes due targets one at a time until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	defer c.client.CloseIdleConnections()
	tick := time.NewTicker(c.cfg.Interval / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for {
			c.mu.Lock()
			g := c.cur
			if len(g.due) == 0 || g.due[0].next.After(time.Now()) {
				c.mu.Unlock()
				break
			}
			e := heap.Pop(&g.due).(*entry)
			e.last = time.Now()
			c.mu.Unlock()
			ok := c.probe(ctx, e.addr)
			c.mu.Lock()
			flipped := false
			if c.cur == g { // results for a destroyed generation are lost
				flipped = c.count(e, ok, c.cfg.Successes, c.cfg.Failures)
				e.next = time.Now().Add(c.cfg.Interval)
				heap.Push(&g.due, e)
			}
			healthy := e.healthy
			c.mu.Unlock()
			c.changed(flipped, e.addr, healthy)
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// count counts an outcome on e's shared counters: a success resets the
// failures, a failure the successes, whichever source reported it. The
// thresholds are those of the reporting source. It reports whether e's
// status changed.
func (c *Checker) count(e *entry, ok bool, successes, failures int) bool {
	was := e.healthy
	if ok {
		e.successes, e.failures = e.successes+1, 0
		e.healthy = e.healthy || e.successes >= successes
	} else {
		e.successes, e.failures = 0, e.failures+1
		e.healthy = e.healthy && e.failures < failures
	}
	return e.healthy != was
}

// changed calls OnChange when flipped.
func (c *Checker) changed(flipped bool, a resolver.Address, healthy bool) {
	if flipped && c.cfg.OnChange != nil {
		c.cfg.OnChange(a, healthy)
	}
}

// ReportHTTPStatus counts the status code of a response a's traffic got,
// as lua-resty-healthcheck's passive defaults do: 2xx and 3xx are
// successes; 429, 500 and 503 are failures; any other code counts for
// nothing. It does nothing when a is not a target.
func (c *Checker) ReportHTTPStatus(a resolver.Address, code int) {
	switch {
	case code >= 200 && code < 400:
		c.report(a, true)
	case code == http.StatusTooManyRequests, code == http.StatusInternalServerError, code == http.StatusServiceUnavailable:
		c.report(a, false)
	}
}

// ReportFailure counts a request to a that got no response (a refused or
// reset connection, a timeout) as a failure. It does nothing when a is not
// a target.
func (c *Checker) ReportFailure(a resolver.Address) { c.report(a, false) }

// report counts a passive outcome for a in the current generation.
func (c *Checker) report(a resolver.Address, ok bool) {
	c.mu.Lock()
	e := c.cur.targets[a]
	flipped, healthy := false, false
	if e != nil {
		flipped, healthy = c.count(e, ok, c.cfg.PassiveSuccesses, c.cfg.PassiveFailures), e.healthy
	}
	c.mu.Unlock()
	c.changed(flipped, a, healthy)
}

// Pick returns the next healthy address of the last set given to
// SetTargets, round robin, and false when none is healthy.
func (c *Checker) Pick() (resolver.Address, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ok []resolver.Address
	for _, a := range c.set {
		if e := c.cur.targets[a]; e != nil && e.healthy {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		return resolver.Address{}, false
	}
	return ok[c.next.Add(1)%uint64(len(ok))], true
}

// Transport returns an http.RoundTripper that sends each request to the
// address Pick returns (keeping the URL's host as the Host header) through
// base, and reports each outcome to c: its status code, or a failure when
// no response came (a request its caller gave up counts for nothing). With
// no healthy address the request fails with ErrNoHealthy.
func (c *Checker) Transport(base *http.Transport) http.RoundTripper {
	return &transport{c: c, base: base}
}

type transport struct {
	c    *Checker
	base *http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, ok := t.c.Pick()
	if !ok {
		return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrNoHealthy)
	}
	out := req.Clone(req.Context())
	out.Host = req.URL.Host
	out.URL.Host = a.HostPort()
	resp, err := t.base.RoundTrip(out)
	switch {
	case err == nil:
		t.c.ReportHTTPStatus(a, resp.StatusCode)
	case req.Context().Err() == nil:
		t.c.ReportFailure(a)
	}
	return resp, err
}

// CloseIdleConnections closes base's idle connections.
func (t *transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

func (c *Checker) probe(ctx context.Context, a resolver.Address) bool {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HostPort()+c.cfg.Path, nil)
	if err != nil {
		return false
	}
	switch {
	case c.cfg.Host != "":
		req.Host = c.cfg.Host
	case a.Hostname != "":
		req.Host = a.Hostname
	}
	resp, err := c.client.Transport.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
	return resp.StatusCode < 400
}
