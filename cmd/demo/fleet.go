package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// fleetIntervals is the fleet story's length in probe intervals, about.
const fleetIntervals = 20

// fleetSummary is what the fleet story came to, in two windows of 6
// intervals while one client's path to a backend was broken (with the
// defaults, then with QuorumAny): counted at that backend, and read from
// the members' own Stats and Roles.
type fleetSummary struct {
	broken   string                   // the client whose path is broken
	sent     [2]map[string]int        // requests the backend received from each client in each window
	roles    [2]map[string]fleet.Role // each member's role on it: once reported; once QuorumAny's failure applied
	outvoted uint64                   // the broken client's Stats.Outvoted after the first
	reported int                      // the other members reporting it (Stats.Disagreements, Roles)
}

// behaved reports whether the story showed what the defaults promise (the
// broken client avoids the backend, is outvoted and reported; every other
// one keeps sending it traffic) and what QuorumAny gives up (the members
// that do not probe the backend apply the broken client's failure).
func (s fleetSummary) behaved() bool {
	r := s.roles[0][s.broken]
	ok := len(s.roles[0]) == 5 && s.sent[0][s.broken] <= 1 && s.outvoted > 0 && r.Outvoted && r.Verdict == health.Healthy && s.reported == 4
	dropped := 0
	for id := range s.roles[0] {
		ok = ok && (id == s.broken || s.sent[0][id] > 0)
		if r := s.roles[1][id]; r.Kind == fleet.RoleApplying && r.From == s.broken && s.sent[1][id] < s.sent[0][id] {
			dropped++
		}
	}
	return ok && dropped == 5-fleet.DefaultProbers
}

// playFleet plays the fleet story, about total long, narrating to n: five
// clients, each a vigil.New upstream sending traffic to four backends,
// share verdicts on an embedded NATS server with the fleet's defaults.
// One client's path to a backend breaks: the fleet outvotes and reports
// it, and the others keep using the backend. Then they share with
// QuorumAny: the broken path takes the backend out of others' traffic.
// With status set, the broken client's status page is served there.
func playFleet(ctx context.Context, total time.Duration, status string, n *narrator) (sum fleetSummary, err error) {
	interval := total / fleetIntervals
	dir, err := os.MkdirTemp("", "vigil-demo-fleet-")
	if err != nil {
		return sum, err
	}
	defer os.RemoveAll(dir)
	ns, err := natstest.Start(dir)
	if err != nil {
		return sum, err
	}
	defer ns.Close()
	dns, err := dnstest.Start("")
	if err != nil {
		return sum, err
	}
	defer dns.Close()
	w, err := newWorld(builder{label: "fleet"}, dns, nil, newTiming(total), n)
	if err != nil {
		return sum, err
	}
	defer w.close()
	probes := &http.Transport{}
	defer probes.CloseIdleConnections()
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var cut atomic.Value // "id ip": id's path to ip is broken
	cut.Store("")
	var ids []string
	var ups []*vigil.Upstream
	for i := range 5 {
		id := fmt.Sprintf("client-%d", i)
		u, err := vigil.New(vigil.Config{Name: w.name, Port: w.port, Resolver: w.resolverConfig(),
			Health: health.Config{Active: health.Active{Prober: probe(id, &cut, probes), Timeout: w.t.probeTimeout,
				Healthy: health.HealthyRules{Interval: interval}, Unhealthy: health.UnhealthyRules{Interval: interval, HTTPFailures: 1}}}})
		if err != nil {
			return sum, err
		}
		defer events.Subscribe(u.Bus(), health.StatusTopic(w.name), func(s health.StatusChange) {
			if s.From != health.Unknown {
				n.say(id, "%s %s -> %s: %s", s.Address.IP, s.From, s.To, describeStatus(s))
			}
		})()
		wg.Go(func() { _ = u.Run(runCtx) })
		wg.Go(func() { sendTraffic(runCtx, u, fmt.Sprintf("http://%s:%d/fleet/%s", w.name, w.port, id), interval/10) })
		ids, ups = append(ids, id), append(ups, u)
	}
	n.say("", "5 clients of %s (4 backends), each sending traffic, share verdicts on NATS JetStream (embedded, %s) with the defaults: "+
		"3 probers per backend, unhealthy for the fleet when 2 of them say so; probes every %s", w.name, ns.URL(), ms(interval))

	var fleets []*fleet.Fleet
	var shown atomic.Pointer[fleet.Fleet] // the member whose status page is served
	leave := func() {}
	defer func() { leave() }()
	join := func(quorum int) error {
		leave()
		fctx, stop := context.WithCancel(runCtx)
		var fwg sync.WaitGroup
		leave, fleets = func() { stop(); fwg.Wait() }, nil
		for i, id := range ids {
			f, err := fleet.New(fleet.Config{URL: ns.URL(), Member: id, Quorum: quorum})
			if err == nil {
				err = f.Attach(ups[i])
			}
			if err != nil {
				return fmt.Errorf("%s cannot join: %w", id, err)
			}
			fwg.Go(func() { _ = f.Run(fctx) })
			fleets = append(fleets, f)
		}
		return nil
	}
	// wait waits until cond holds, at most 10s (on a busy machine).
	wait := func(cond func() bool) bool { return poll(ctx, time.Now().Add(10*time.Second), cond) }
	// roles returns every member's role on backend i, by client.
	roles := func(i int) map[string]fleet.Role {
		m := map[string]fleet.Role{}
		for j, f := range fleets {
			if r, ok := f.Role(w.name, w.addr(i)); ok {
				m[ids[j]] = r
			}
		}
		return m
	}
	// count returns what each backend received in the 6 intervals from
	// now: requests by client, and probes.
	count := func() (out []map[string]int) {
		var base []map[string]int
		for _, b := range w.backends[:4] {
			base = append(base, b.Paths())
		}
		sleepUntil(ctx, time.Now().Add(6*interval))
		for i, b := range w.backends[:4] {
			m := map[string]int{}
			for path, k := range b.Paths() {
				m[strings.TrimPrefix(path, "/fleet/")] = k - base[i][path]
			}
			out = append(out, m)
		}
		return out
	}

	// Settled: every member holds the fleet's verdict on every backend, and
	// one is the first-ranked prober of backend 1: its path will break.
	a, x := w.addr(1), -1
	if err := join(0); err != nil {
		return sum, err
	}
	if !wait(func() bool {
		healthy := 0
		x = -1
		for i := range 4 {
			for id, r := range roles(i) {
				if r.Verdict == health.Healthy {
					healthy++
				}
				if i == 1 && r.Kind == fleet.RoleProber && r.Rank == 1 {
					x = slices.Index(ids, id)
				}
			}
		}
		return healthy == 4*5 && x >= 0
	}) {
		return sum, fmt.Errorf("the fleet did not settle")
	}
	var rates []string
	for _, m := range count() {
		rates = append(rates, fmt.Sprintf("%.1f", float64(m[probePath])/6))
	}
	n.say("", "sharing: probes per backend per interval, counted at the backends: %s (5 clients probing alone: 5)", strings.Join(rates, " "))
	sum.broken = ids[x]
	shown.Store(fleets[x])
	if status != "" {
		url, stop, err := serveStatus(status, statuspage.Of(ups[x]), statuspage.Config{Title: "vigil: " + ids[x], Refresh: time.Second, Window: total},
			statuspage.WithRoles(func(up string, a resolver.Address) (statuspage.Role, bool) { return shown.Load().StatusRole(up, a) }))
		if err != nil {
			return sum, fmt.Errorf("-http: %w", err)
		}
		defer stop()
		n.say(ids[x], "status page: %s (with its fleet roles)", url)
	}

	n.say("", "== 1/2 %s's path to %s breaks: its probes of it fail; the backend is fine, and the other clients reach it", ids[x], a.IP)
	cut.Store(ids[x] + " " + a.IP.String())
	if !wait(func() bool { return ups[x].Checker().Status(a) == health.Unhealthy }) {
		return sum, fmt.Errorf("%s did not find %s unhealthy", ids[x], a.IP)
	}
	sum.sent[0] = count()[1]
	if !wait(func() bool { // the fleet holds it healthy; the broken client is outvoted, and the others report it
		sum.roles[0], sum.reported = roles(1), 0
		for i, f := range fleets {
			r := sum.roles[0][ids[i]]
			if i != x && r.Verdict == health.Healthy && f.Stats().Disagreements > 0 &&
				slices.ContainsFunc(r.Probers, func(p fleet.ProberVerdict) bool { return p.Member == ids[x] && p.Disagrees }) {
				sum.reported++
			}
		}
		r := sum.roles[0][ids[x]]
		return r.Outvoted && r.Verdict == health.Healthy && sum.reported == 4
	}) {
		return sum, fmt.Errorf("%s was not outvoted and reported", ids[x])
	}
	sum.outvoted = fleets[x].Stats().Outvoted
	r := sum.roles[0][ids[x]]
	n.say(ids[x], "holds %s unhealthy by its own probes, and is outvoted: Stats.Outvoted %d; its role: prober #%d, Outvoted %v; the fleet's verdict %s (%s, from %s)",
		a.IP, sum.outvoted, r.Rank, r.Outvoted, r.Verdict, r.Reason, r.From)
	n.say("", "%d of the 4 other members report %s (Stats.Disagreements, Disagrees in their Roles; a Warn line with a logger)", sum.reported, ids[x])

	n.say("", "== 2/2 the same clients share again, with Quorum: fleet.QuorumAny: any prober's failure is the fleet's")
	if err := join(fleet.QuorumAny); err != nil {
		return sum, err
	}
	shown.Store(fleets[x])
	if !wait(func() bool { // the 2 members that do not probe a apply the failure
		k := 0
		sum.roles[1] = roles(1)
		for id, r := range sum.roles[1] {
			if r.Kind == fleet.RoleApplying && r.Verdict == health.Unhealthy && ups[slices.Index(ids, id)].Checker().Status(a) == health.Unhealthy {
				k++
			}
		}
		return k == 5-fleet.DefaultProbers
	}) {
		return sum, fmt.Errorf("the clients that do not probe %s did not apply %s's failure", a.IP, ids[x])
	}
	sum.sent[1] = count()[1]

	ok := sum.behaved()
	n.say("", "summary: requests to %s (healthy) from each client in 6 intervals while %s's path to it was broken, counted at the backend:", a.IP, ids[x])
	n.say("", "  the defaults (2 of 3 probers): %s: %s avoids it, is outvoted and reported; the others use it", perClient(ids, sum.sent[0]), ids[x])
	n.say("", "  QuorumAny:                     %s: the clients that do not probe it drop it too", perClient(ids, sum.sent[1]))
	text := "the fleet behaved: one client's broken path was outvoted and reported, not imposed on the others"
	if !ok {
		text = "the fleet did NOT behave as its defaults promise"
	}
	n.emit(line{Text: text, OK: &ok}, nil)
	return sum, nil
}

// probe is id's prober: GET /healthz over t, failing at once from id over
// a cut path.
func probe(id string, cut *atomic.Value, t *http.Transport) health.Prober {
	return health.ProberFunc(func(ctx context.Context, a resolver.Address) (health.ProbeOutcome, string) {
		if cut.Load() == id+" "+a.IP.String() {
			return health.ProbeTCPFailure, "no route to host (from " + id + " alone)"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+netip.AddrPortFrom(a.IP, a.Port).String()+probePath, nil)
		var resp *http.Response
		if err == nil {
			resp, err = t.RoundTrip(req)
		}
		if err != nil {
			return health.ProbeTCPFailure, err.Error()
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return health.ProbeHTTPFailure, "HTTP " + resp.Status
		}
		return health.ProbeSuccess, "HTTP " + resp.Status
	})
}

// sendTraffic GETs url through u, one request at a time, every period
// until ctx ends.
func sendTraffic(ctx context.Context, u *vigil.Upstream, url string, period time.Duration) {
	client := &http.Client{Transport: u.Transport(nil), Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}
	}
}

// perClient lists m's counts in the order of ids.
func perClient(ids []string, m map[string]int) string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s %d", id, m[id]))
	}
	return strings.Join(out, ", ")
}
