package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// world is one pipeline playing the story, on its own DNS name and
// backends: what it does is counted at its backends and from its checker's
// status changes.
type world struct {
	label    string
	name     string
	port     uint16
	backends []*backendtest.Backend
	dns      *dnstest.Server
	t        timing
	n        *narrator
	p        pipeline
	sent     atomic.Int64

	mu       sync.Mutex
	set      []string // the IPs of the source's latest Change, sorted
	version  uint64   // its Version
	failures []*failure

	// Used by the steps, one at a time.
	inDNS   map[int]bool
	held    map[int]health.Status // each backend's last status seen while it was a target
	removed map[int]int           // out of DNS: the probes it had received when they began to count
	sum     summary
}

// failure is a backend answering 500: to every request, or (checkOnly) to
// its probes alone. found is when its checker first said it was unhealthy.
type failure struct {
	i                 int
	checkOnly         bool
	start, found, end time.Time
}

// summary is what one world's story came to.
type summary struct {
	World string `json:"world"`
	Sent  int64  `json:"requests_sent"`
	// Sent after the checker first said a failing backend was unhealthy,
	// before it recovered; received by that backend.
	ToUnhealthy int `json:"requests_to_unhealthy"`
	// Unhealthy before a DNS change, healthy once the checker applied it,
	// while the backend still failed.
	Resets int `json:"status_resets"`
	// Received by an address out of DNS, from grace after the checker
	// applied its removal.
	RemovedProbes int `json:"probes_to_removed"`
	// Not published by the source and applied by the checker by the next step.
	LateChanges int `json:"changes_not_applied"`
	// From the start of each failure until the checker first said the
	// backend was unhealthy; -1: never.
	FailureFoundMs int64 `json:"failure_found_ms"`
	CheckFoundMs   int64 `json:"check_failure_found_ms"`
}

// behaved reports whether s is what vigil must show.
func (s summary) behaved() bool {
	return s.Sent > 0 && s.ToUnhealthy == 0 && s.Resets == 0 && s.RemovedProbes == 0 && s.LateChanges == 0 &&
		s.FailureFoundMs >= 0 && s.CheckFoundMs >= 0
}

// newWorld starts five backends on 127.0.0.11 to .15, sharing a port,
// puts the first four in DNS and builds b's pipeline, if b has one.
func newWorld(b builder, dns *dnstest.Server, bus *events.Bus, t timing, n *narrator) (*world, error) {
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.0.11"), 5, nil)
	if err == nil && slices.ContainsFunc(bs, func(b *backendtest.Backend) bool { return b.Port != bs[0].Port }) {
		backendtest.CloseAll(bs)
		err = errors.New("no port free on all of 127.0.0.11 to .15")
	}
	if err != nil {
		return nil, err
	}
	w := &world{
		label: b.label, name: "api-" + b.label + ".demo.test", port: bs[0].Port, backends: bs, dns: dns, t: t, n: n,
		inDNS: map[int]bool{}, held: map[int]health.Status{}, removed: map[int]int{},
	}
	if err = w.setDNS(0, 1, 2, 3); err == nil && b.build != nil {
		w.p, err = b.build(w, bus)
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) close() { backendtest.CloseAll(w.backends) }

// say narrates a line about w.
func (w *world) say(format string, args ...any) { w.n.say(w.label, format, args...) }

func (w *world) addr(i int) resolver.Address { return w.backends[i].Address(w.name) }

// probes returns the probes backend i has received.
func (w *world) probes(i int) int { return w.backends[i].Paths()[probePath] }

// ips returns the IPs of the backends idx, sorted.
func (w *world) ips(idx []int) []string {
	var ips []string
	for _, i := range idx {
		ips = append(ips, w.backends[i].IP.String())
	}
	slices.Sort(ips)
	return ips
}

// setDNS makes w's name resolve to the backends idx, with TTL 0.
func (w *world) setDNS(idx ...int) error {
	clear(w.inDNS)
	for _, i := range idx {
		w.inDNS[i] = true
	}
	return w.dns.SetA(w.name, 0, w.ips(idx)...)
}

// resolverConfig is how every pipeline follows w's name (vigil.New takes
// Name and Port from its own Config).
func (w *world) resolverConfig() resolver.Config {
	return resolver.Config{
		Name:    w.name,
		Port:    w.port,
		Family:  resolver.IPv4Only, // the backends are on 127.0.0.X
		Servers: []string{w.dns.Addr()},
		MinTTL:  w.t.minTTL,
		Timeout: time.Second,
	}
}

// follow narrates the Changes and failures of w's DNS source and the
// status changes its checker publishes, until unsubscribe is called.
func (w *world) follow(bus *events.Bus) (unsubscribe func()) {
	unChange := events.Subscribe(bus, resolver.Topic(w.name), func(c resolver.Change) {
		var ips []string
		for _, a := range c.Addresses {
			ips = append(ips, a.IP.String())
		}
		slices.Sort(ips)
		w.mu.Lock()
		w.set, w.version = ips, c.Version
		w.mu.Unlock()
		w.say("dns: %s", describeChange(c, func(a resolver.Address) string { return a.IP.String() }))
	})
	unFail := events.Subscribe(bus, resolver.FailureTopic(w.name), func(f resolver.Failure) {
		w.say("dns: lookup failed, keeping the last set: %v", f.Err)
	})
	unStatus := events.Subscribe(bus, health.StatusTopic(w.name), func(s health.StatusChange) {
		w.statusChanged(s.Address, s.From, s.To, describeStatus(s))
	})
	return func() { unChange(); unFail(); unStatus() }
}

// describeChange lists a Change's addresses, each as str says, then what
// it added and removed, unless it is the first.
func describeChange(c resolver.Change, str func(resolver.Address) string) string {
	var all, d []string
	for _, a := range c.Addresses {
		all = append(all, str(a))
	}
	for _, a := range c.Added {
		d = append(d, "+"+str(a))
	}
	for _, a := range c.Removed {
		d = append(d, "-"+str(a))
	}
	if len(d) == 0 || len(c.Added) == len(c.Addresses) {
		return strings.Join(all, " ")
	}
	return strings.Join(all, " ") + " (" + strings.Join(d, " ") + ")"
}

// describeStatus says why a StatusChange happened, if it says, and what
// each verdict is.
func describeStatus(s health.StatusChange) string {
	return strings.TrimPrefix(s.Reason+"; ", "; ") + fmt.Sprintf("active %s, passive %s", s.Active, s.Passive)
}

// statusChanged narrates a status change of w's checker, noting when it
// first found a failing backend unhealthy.
func (w *world) statusChanged(a resolver.Address, from, to health.Status, why string) {
	text := fmt.Sprintf("%s %s -> %s", a.IP, from, to)
	if from == to {
		text = fmt.Sprintf("%s still %s", a.IP, to)
	}
	if why != "" {
		text += ": " + why
	}
	now := time.Now()
	w.mu.Lock()
	for _, f := range w.failures {
		if w.backends[f.i].IP == a.IP && to == health.Unhealthy && f.found.IsZero() && f.end.IsZero() {
			f.found = now
			text += fmt.Sprintf(" (found %s after it began failing)", ms(now.Sub(f.start)))
		}
	}
	w.mu.Unlock()
	w.say("%s", text)
}

// traffic sends a GET request through the pipeline every t.every (skipping
// a tick when eight are in flight) until ctx ends. Each path carries when
// it was sent.
func (w *world) traffic(ctx context.Context) {
	client := &http.Client{Transport: w.p.transport, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	busy := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(w.t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case busy <- struct{}{}:
		default:
			continue
		}
		wg.Go(func() {
			defer func() { <-busy }()
			url := fmt.Sprintf("http://%s:%d%s%d", w.name, w.port, trafficPath, time.Since(w.n.start))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			w.sent.Add(1)
			if resp, err := client.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		})
	}
}

// requestsTo returns how many requests backend i received that were sent
// from from until to (zero: the end).
func (w *world) requestsTo(i int, from, to time.Time) int {
	total := 0
	for path, n := range w.backends[i].Paths() {
		ns, ok := strings.CutPrefix(path, trafficPath)
		d, err := strconv.ParseInt(ns, 10, 64)
		sent := w.n.start.Add(time.Duration(d))
		if ok && err == nil && !sent.Before(from) && (to.IsZero() || sent.Before(to)) {
			total += n
		}
	}
	return total
}

// summarize counts what w's story came to, and says which failure its
// checker never found.
func (w *world) summarize() summary {
	s := w.sum
	s.World, s.Sent = w.label, w.sent.Load()
	s.FailureFoundMs, s.CheckFoundMs = -1, -1
	for i, base := range w.removed {
		s.RemovedProbes += w.probes(i) - base
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.failures {
		found := &s.FailureFoundMs
		if f.checkOnly {
			found = &s.CheckFoundMs
		}
		if f.found.IsZero() {
			w.say("%s never found unhealthy: %d requests reached it while it failed", w.backends[f.i].IP, w.requestsTo(f.i, f.start, f.end))
			continue
		}
		*found = f.found.Sub(f.start).Round(time.Millisecond).Milliseconds()
		s.ToUnhealthy += w.requestsTo(f.i, f.found, f.end)
	}
	return s
}

// summaryLines is the plain summary, one column per world.
func summaryLines(ss []summary, t timing) []string {
	row := func(name string, cell func(s summary) any) string {
		l := fmt.Sprintf("%-44s", name)
		for _, s := range ss {
			l += fmt.Sprintf("%10v", cell(s))
		}
		return l
	}
	found := func(ms int64) any {
		if ms < 0 {
			return "never"
		}
		return strconv.FormatInt(ms, 10) + "ms"
	}
	lines := []string{"",
		row("summary, counted at the backends", func(s summary) any { return s.World }),
		row("  requests sent", func(s summary) any { return s.Sent }),
		row("  requests to a backend found unhealthy (1)", func(s summary) any { return s.ToUnhealthy }),
		row("  statuses reset by a DNS change", func(s summary) any { return s.Resets }),
		row("  probes to addresses removed from DNS (2)", func(s summary) any { return s.RemovedProbes }),
		row("  failing backend found unhealthy after", func(s summary) any { return found(s.FailureFoundMs) }),
		row("  failing health check found after", func(s summary) any { return found(s.CheckFoundMs) }),
		"(1) sent after its checker first said it was unhealthy, before it recovered",
		fmt.Sprintf("(2) from %s after the checker applied the removal: time for a probe in flight to land", ms(t.grace)),
	}
	if v := ss[0]; v.behaved() {
		lines = append(lines, v.World+" behaved: both failures found, no request to them since, no status reset, no probe of a removed address")
	} else {
		lines = append(lines, fmt.Sprintf("%s did NOT behave (DNS changes not applied in time: %d)", v.World, v.LateChanges))
	}
	if len(ss) == 1 {
		lines = append(lines, "run with -compare to play the same story against a checker rebuilt at every DNS change")
	}
	return lines
}
