package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// upstream is the name every test client checks.
const upstream = "api.fleet.test"

// world is an embedded NATS server, loopback backends and clients, each a
// checker of the backends with its own bus and, once joined, its own fleet
// member.
type world struct {
	t        testing.TB
	nats     *natstest.Server
	backends []*backendtest.Backend
	addrs    []resolver.Address
	interval time.Duration
	clients  []*client
	why      string // why settled is false
}

// client is one simulated process.
type client struct {
	w      *world
	id     string
	bus    *events.Bus
	chk    *health.Checker
	fleet  *fleet.Fleet
	log    *testutil.Buffer
	stopCh func() // stops the checker
	stopFl func() error
	runErr chan error // Run's result, once
	done   bool
}

// newWorld starts a NATS server (configured by opts) and n backends from
// first (127.0.14x.1).
func newWorld(t testing.TB, first string, n int, interval time.Duration, opts ...natstest.Option) *world {
	t.Helper()
	ns, err := natstest.Start(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	w := &world{t: t, nats: ns, backends: bs, interval: interval}
	for _, b := range bs {
		w.addrs = append(w.addrs, b.Address(upstream))
	}
	t.Cleanup(func() { // clients stop before the server and the backends
		for _, c := range w.clients {
			c.stop()
		}
	})
	return w
}

// healthConfig probes /healthz every interval; one failure makes a target
// unhealthy, two successes healthy again.
func healthConfig(interval time.Duration) health.Config {
	return health.Config{
		Name: upstream,
		Active: health.Active{
			Path:      "/healthz",
			Timeout:   interval,
			Healthy:   health.HealthyRules{Interval: interval},
			Unhealthy: health.UnhealthyRules{Interval: interval, HTTPFailures: 1},
		},
	}
}

// addClient starts a checker of every backend (no fleet yet).
func (w *world) addClient(id string) *client {
	w.t.Helper()
	return w.addClientWith(id, healthConfig(w.interval))
}

// addClientWith starts a checker of every backend configured by hc and
// opts.
func (w *world) addClientWith(id string, hc health.Config, opts ...health.Option) *client {
	w.t.Helper()
	bus := events.New()
	chk, err := health.NewChecker(hc, bus, opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	chk.SetTargets(w.addrs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = chk.Run(ctx) }()
	c := &client{w: w, id: id, bus: bus, chk: chk, log: &testutil.Buffer{},
		stopCh: func() { cancel(); <-done; bus.Close() }}
	w.clients = append(w.clients, c)
	return c
}

// join makes c a member of the fleet and runs it.
func (c *client) join(cfg fleet.Config, opts ...fleet.Option) {
	c.w.t.Helper()
	if cfg.URL == "" && cfg.Conn == nil {
		cfg.URL = c.w.nats.URL()
	}
	if cfg.Member == "" {
		cfg.Member = c.id
	}
	logger := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := fleet.New(cfg, append([]fleet.Option{fleet.WithLogger(logger)}, opts...)...)
	if err != nil {
		c.w.t.Fatal(err)
	}
	if err := f.AttachChecker(c.chk, c.bus); err != nil {
		c.w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.Run(ctx) }()
	c.fleet, c.runErr = f, errc
	var once sync.Once
	var runErr error
	c.stopFl = func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
}

// ended waits up to d for c's Run to return by itself and returns its
// error; the client then counts as left.
func (c *client) ended(d time.Duration) error {
	select {
	case err := <-c.runErr:
		c.stopFl = nil
		return err
	case <-time.After(d):
		return fmt.Errorf("Run still running after %v", d)
	}
}

// leave stops c's fleet member; Run's error is returned.
func (c *client) leave() error {
	if c.stopFl == nil {
		return nil
	}
	return c.stopFl()
}

// stop stops c entirely: fleet member, then checker.
func (c *client) stop() {
	if c.done {
		return
	}
	c.done = true
	if err := c.leave(); err != nil {
		c.w.t.Errorf("%s: fleet Run: %v", c.id, err)
	}
	c.stopCh()
}

// probes returns how many health probes each backend has received.
func (w *world) probes() []int {
	out := make([]int, len(w.backends))
	for i, b := range w.backends {
		out[i] = b.Paths()["/healthz"]
	}
	return out
}

// probeRate returns the probes each backend received per interval over
// the next n intervals.
func (w *world) probeRate(n int) []float64 {
	before := w.probes()
	time.Sleep(time.Duration(n) * w.interval)
	after := w.probes()
	out := make([]float64, len(before))
	for i := range out {
		out[i] = float64(after[i]-before[i]) / float64(n)
	}
	return out
}

// sharing returns the clients whose fleet member shares now.
func (w *world) sharing() []*client {
	var out []*client
	for _, c := range w.clients {
		if !c.done && c.fleet != nil && c.fleet.Sharing() {
			out = append(out, c)
		}
	}
	return out
}

// probersOf returns the sharing clients that probe a for the fleet.
func (w *world) probersOf(a resolver.Address) []string {
	var out []string
	for _, c := range w.sharing() {
		ps, _ := c.fleet.Probing(upstream)
		if slices.Contains(ps, a) {
			out = append(out, c.id)
		}
	}
	return out
}

// settled reports whether the n clients share, every address has exactly
// min(r, n) probers, and every client sees them all with a verdict (no
// claim still waiting for its first probe) and applies the fleet's verdict
// where it does not probe.
func (w *world) settled(n, r int) bool {
	live := w.sharing()
	if len(live) != n {
		return false
	}
	for _, a := range w.addrs {
		if len(w.probersOf(a)) != min(r, n) {
			w.why = fmt.Sprintf("%v has probers %v", a, w.probersOf(a))
			return false
		}
	}
	for _, c := range live {
		roles := c.fleet.Roles()
		if len(roles) != len(w.addrs) {
			w.why = fmt.Sprintf("%s has %d roles", c.id, len(roles))
			return false
		}
		for _, role := range roles {
			if role.Kind != fleet.RoleProber && role.Kind != fleet.RoleApplying || len(role.Probers) != min(r, n) {
				w.why = fmt.Sprintf("%s: %+v", c.id, role)
				return false
			}
			for _, p := range role.Probers {
				if p.Status == health.Unknown {
					w.why = fmt.Sprintf("%s: %+v", c.id, role)
					return false
				}
			}
		}
	}
	return true
}

// waitSettled waits until settled(n, r).
func (w *world) waitSettled(n, r int) {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("%d members sharing, %d probers per address, their verdicts applied", n, r), func() bool { return w.settled(n, r) })
}

// waitProbers waits until n clients share and every address has min(r,
// n) probers: settled, less strict about what each member has seen.
func (w *world) waitProbers(n, r int) {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("%d members sharing, %d probers per address", n, r), func() bool {
		if len(w.sharing()) != n {
			return false
		}
		for _, a := range w.addrs {
			if len(w.probersOf(a)) != min(r, n) {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond for 30s; if it does not come, it logs every client's
// roles and fails.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.dump()
			w.t.Fatalf("timed out after 30s waiting for %s (%s)", what, w.why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dump logs what every running client sees.
func (w *world) dump() {
	for _, c := range w.clients {
		if c.done || c.fleet == nil {
			continue
		}
		w.t.Logf("%s: %+v", c.id, c.fleet.Stats())
		for _, line := range strings.Split(c.log.String(), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				w.t.Log("  " + line)
			}
		}
		for _, r := range c.fleet.Roles() {
			w.t.Logf("  %v: %v rank %d, verdict %v from %s, probers %+v", r.Address, r.Kind, r.Rank, r.Verdict, r.From, r.Probers)
		}
	}
}

// canonical returns a's string in the fleet's keys and logs:
// "ip:port/hostname".
func canonical(a resolver.Address) string {
	return netip.AddrPortFrom(a.IP, a.Port).String() + "/" + a.Hostname
}

// client returns the client of id.
func (w *world) client(id string) *client {
	for _, c := range w.clients {
		if c.id == id {
			return c
		}
	}
	w.t.Fatalf("no client %s", id)
	return nil
}

// role returns c's role on a.
func (c *client) role(a resolver.Address) fleet.Role {
	for _, r := range c.fleet.Roles() {
		if r.Address.Key() == a.Key() {
			return r
		}
	}
	return fleet.Role{}
}

// everyone reports whether every running client holds a with status s.
func (w *world) everyone(a resolver.Address, s health.Status) bool {
	for _, c := range w.clients {
		if !c.done && c.chk.Status(a) != s {
			return false
		}
	}
	return true
}

// countProbes counts c's probes by address until the returned function
// is called, which returns the counts.
func countProbes(c *client) func() map[string]int {
	var mu sync.Mutex
	probed := map[string]int{}
	unsubscribe := events.Subscribe(c.bus, health.ProbeTopic(upstream), func(r health.ProbeResult) {
		mu.Lock()
		probed[r.Address.String()]++
		mu.Unlock()
	})
	return func() map[string]int {
		unsubscribe()
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(probed)
	}
}
