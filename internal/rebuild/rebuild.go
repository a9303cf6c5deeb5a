// Package rebuild is the destroy-and-rebuild health checker that vigil
// replaces, kept as a baseline for benchmarks and comparisons: every change
// of the target set throws all state away and builds a new checker whose
// targets all start healthy, to be probed from scratch.
//
// Its methods are safe for concurrent use.
package rebuild

import (
	"container/heap"
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Config configures the baseline. Zero values: Path "/", Interval 1s,
// Timeout 1s, Successes 2, Failures 2. A 2xx or 3xx status is a success.
type Config struct {
	Path      string
	Interval  time.Duration
	Timeout   time.Duration
	Successes int
	Failures  int
	// Host is the configured check host: the Host header of every probe
	// (default: the target's Hostname). When set, a rebuild also matches
	// departed targets by it, as the gateway this baseline models did:
	// a departed target whose Hostname differs is never matched, so it stays
	// in the new checker and keeps being probed.
	Host string
}

// Target is a snapshot of one target of the current checker.
type Target struct {
	Address   resolver.Address
	Healthy   bool
	Successes int       // consecutive
	Failures  int       // consecutive
	LastProbe time.Time // when the last probe started; zero if none has
}

// Checker is the baseline checker.
type Checker struct {
	cfg    Config
	client *http.Client

	mu  sync.Mutex
	cur *checker // replaced wholesale by SetTargets
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
			if c.cur == g { // results for a destroyed generation are lost
				c.count(e, ok)
				e.next = time.Now().Add(c.cfg.Interval)
				heap.Push(&g.due, e)
			}
			c.mu.Unlock()
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

func (c *Checker) count(e *entry, ok bool) {
	if ok {
		e.successes, e.failures = e.successes+1, 0
		if !e.healthy && e.successes >= c.cfg.Successes {
			e.healthy = true
		}
		return
	}
	e.successes, e.failures = 0, e.failures+1
	if e.healthy && e.failures >= c.cfg.Failures {
		e.healthy = false
	}
}

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
