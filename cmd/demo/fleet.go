package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/resolver"
)

// The fleet story: flClients clients, each a vigil.Upstream of flName
// following the in-process DNS server, check flBackends loopback backends
// probing every flInterval (at -speed 1); they join a fleet on an embedded
// NATS server one by one, a backend fails, a prober leaves, the backend
// recovers. About 15 s at -speed 1.
const (
	flClients  = 5
	flBackends = 4
	flName     = "api.fleet.demo"
	flInterval = 500 * time.Millisecond
	flFirstIP  = "127.0.146.1"
)

// flStory is one run of `demo -fleet`.
type flStory struct {
	out      io.Writer
	start    time.Time
	interval time.Duration
	backends []*backendtest.Backend
	addrs    []resolver.Address
	clients  []*flClient
	results  []flResult
}

// flClient is one simulated process: an Upstream and, once it joined, its
// fleet member.
type flClient struct {
	id     string
	up     *vigil.Upstream
	fl     *fleet.Fleet
	stopUp func()
	stopFl func() error
	left   bool
}

// flResult is one check of the summary.
type flResult struct {
	ok   bool
	what string
}

// runFleet plays the fleet story and returns the exit code.
func runFleet(ctx context.Context, speed float64, stdout, stderr io.Writer) int {
	dir, err := os.MkdirTemp("", "vigil-demo-fleet-")
	if err != nil {
		fmt.Fprintln(stderr, "demo: -fleet:", err)
		return exitFail
	}
	defer os.RemoveAll(dir)
	ns, err := natstest.Start(dir)
	if err != nil {
		fmt.Fprintln(stderr, "demo: -fleet: NATS:", err)
		return exitFail
	}
	defer ns.Close()
	dns, err := dnstest.Start("")
	if err != nil {
		fmt.Fprintln(stderr, "demo: -fleet: DNS:", err)
		return exitFail
	}
	defer dns.Close()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(flFirstIP), flBackends, nil)
	if err != nil {
		fmt.Fprintln(stderr, "demo: -fleet: backends:", err)
		return exitFail
	}
	defer backendtest.CloseAll(bs)
	ips := make([]string, len(bs))
	for i, b := range bs {
		ips[i] = b.IP.String()
	}
	if err := dns.SetA(flName, 60, ips...); err != nil {
		fmt.Fprintln(stderr, "demo: -fleet: DNS:", err)
		return exitFail
	}

	s := &flStory{out: stdout, start: time.Now(), interval: time.Duration(float64(flInterval) / speed), backends: bs}
	for _, b := range bs {
		s.addrs = append(s.addrs, b.Address(flName))
	}
	defer s.stopAll()
	for i := range flClients {
		c, err := s.newClient(fmt.Sprintf("client-%d", i), dns.Addr(), ns.URL())
		if err != nil {
			fmt.Fprintln(stderr, "demo: -fleet:", err)
			return exitFail
		}
		s.clients = append(s.clients, c)
	}
	fmt.Fprintf(stdout, "vigil fleet: %d clients check %d backends (%s) every %v; they share verdicts on NATS JetStream (embedded, %s), %d probers per backend\n\n",
		flClients, flBackends, flName, s.interval, ns.URL(), fleet.DefaultProbers)
	if !s.play(ctx) {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "demo: interrupted")
		}
		return exitFail
	}
	fmt.Fprintln(stdout, "\nsummary:")
	ok := true
	for _, r := range s.results {
		mark := "✓"
		if !r.ok {
			mark, ok = "✗", false
		}
		fmt.Fprintf(stdout, "  %s %s\n", mark, r.what)
	}
	if !ok {
		return exitFail
	}
	return exitOK
}

// newClient builds a client's Upstream and runs it.
func (s *flStory) newClient(id, dnsAddr, natsURL string) (*flClient, error) {
	u, err := vigil.New(vigil.Config{
		Name: flName, Port: s.backends[0].Port,
		Resolver: resolver.Config{Servers: []string{dnsAddr}},
		Health: health.Config{Active: health.Active{
			Path:      "/healthz",
			Timeout:   s.interval,
			Healthy:   health.HealthyRules{Interval: s.interval},
			Unhealthy: health.UnhealthyRules{Interval: s.interval, HTTPFailures: 1},
		}},
	})
	if err != nil {
		return nil, err
	}
	f, err := fleet.New(fleet.Config{URL: natsURL, Member: id})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = u.Run(ctx) }()
	return &flClient{id: id, up: u, fl: f, stopUp: func() { cancel(); <-done }}, nil
}

// join attaches c's upstream to its fleet member and runs it.
func (c *flClient) join() error {
	if err := c.fl.Attach(c.up); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.fl.Run(ctx) }()
	c.stopFl = func() error { cancel(); return <-errc }
	return nil
}

// leave stops c: its fleet member (which leaves the fleet), then its
// upstream.
func (c *flClient) leave() {
	if c.left {
		return
	}
	c.left = true
	if c.stopFl != nil {
		_ = c.stopFl()
	}
	c.stopUp()
}

func (s *flStory) stopAll() {
	for _, c := range s.clients {
		c.leave()
	}
}

// say prints one line of the story, stamped with its time.
func (s *flStory) say(format string, args ...any) {
	fmt.Fprintf(s.out, "[%5.1fs] %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

func (s *flStory) result(ok bool, format string, args ...any) {
	s.results = append(s.results, flResult{ok: ok, what: fmt.Sprintf(format, args...)})
}

// probes returns the health probes each backend has received.
func (s *flStory) probes() []int {
	out := make([]int, len(s.backends))
	for i, b := range s.backends {
		out[i] = b.Paths()["/healthz"]
	}
	return out
}

// rate waits n intervals (or until ctx ends) and returns the probes each
// backend received per interval meanwhile.
func (s *flStory) rate(ctx context.Context, n int) ([]float64, bool) {
	before := s.probes()
	if !flSleep(ctx, time.Duration(n)*s.interval) {
		return nil, false
	}
	after := s.probes()
	out := make([]float64, len(before))
	for i := range out {
		out[i] = float64(after[i]-before[i]) / float64(n)
	}
	return out, true
}

func flRates(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.1f", r)
	}
	return strings.Join(parts, " ")
}

func flSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitFor polls cond every 2ms for up to within; false if it never held
// or ctx ended.
func flWaitFor(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// present returns the clients that have not left.
func (s *flStory) present() []*flClient {
	var out []*flClient
	for _, c := range s.clients {
		if !c.left {
			out = append(out, c)
		}
	}
	return out
}

// probersOf returns the clients probing a for the fleet.
func (s *flStory) probersOf(a resolver.Address) []string {
	var out []string
	for _, c := range s.present() {
		ps, _ := c.fl.Probing(flName)
		if slices.ContainsFunc(ps, func(p resolver.Address) bool { return p.Key() == a.Key() }) {
			out = append(out, c.id)
		}
	}
	return out
}

// settled reports whether every present client shares, knows the others
// and every backend has r probers.
func (s *flStory) settled() bool {
	cs := s.present()
	for _, c := range cs {
		if _, ms := c.fl.Probing(flName); !c.fl.Sharing() || len(ms) != len(cs) {
			return false
		}
	}
	for _, a := range s.addrs {
		if len(s.probersOf(a)) != fleet.DefaultProbers {
			return false
		}
	}
	return true
}
