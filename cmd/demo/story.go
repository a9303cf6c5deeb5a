package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/statuspage"
)

// Paths the backends count apart: probes, and traffic whose path carries
// the nanoseconds from the start of the story to when it was sent.
const (
	probePath   = "/healthz"
	trafficPath = "/api/"
)

// The backends, by index (127.0.0.11 to .15); 0 to 3 are in DNS at first.
const (
	sick       = 1 // fails, leaves DNS, comes back still failing, recovers
	checkFails = 2 // its health check fails while its traffic succeeds
)

// step is one scene of the story, played at the same moment in every
// world. Its do returns when what it waits for happened, or at until: on a
// busy machine, the rest of the story waits for it.
type step struct {
	at    float64 // in units, a twentieth of the story
	title string  // %[n]s is backend n-1's IP
	do    func(ctx context.Context, w *world, until time.Time)
}

var story = []step{
	{0, "steady state: the name resolves to %[1]s %[2]s %[3]s %[4]s", nil},
	{2, "%[2]s starts answering 500", func(ctx context.Context, w *world, until time.Time) {
		w.fail(sick, false)
		poll(ctx, until, func() bool { return w.failing(sick, true) }) // the changes to come find it unhealthy
	}},
	{5, "scale up: %[5]s joins DNS while %[2]s still fails", change(0, 1, 2, 3, 4)},
	{7, "%[2]s leaves DNS, still failing", change(0, 2, 3, 4)},
	{11, "%[2]s comes back to DNS, still failing", change(0, 1, 2, 3, 4)},
	{14, "%[2]s recovers", func(_ context.Context, w *world, _ time.Time) { w.recover(sick) }},
	{16, "%[3]s's health check (" + probePath + ") answers 500 while its traffic still succeeds",
		func(_ context.Context, w *world, _ time.Time) { w.fail(checkFails, true) }},
}

// timing is the story's pace, derived from its length.
type timing struct {
	unit         time.Duration // a twentieth of the story
	interval     time.Duration // between probes, healthy or not
	probeTimeout time.Duration
	minTTL       time.Duration // the records have TTL 0: the source re-resolves this often
	grace        time.Duration // after the checker applied a removal, a probe in flight lands within this
	every        time.Duration // between requests: five per backend per probe interval
}

func newTiming(total time.Duration) timing {
	u := total / 20
	t := timing{
		unit:         u,
		interval:     max(u/2, 50*time.Millisecond),
		probeTimeout: min(max(u*3/10, 250*time.Millisecond), 500*time.Millisecond),
		minTTL:       max(u/4, 50*time.Millisecond),
	}
	t.grace = t.probeTimeout + 250*time.Millisecond // and time for a busy machine to serve it
	t.every = t.interval / 20
	return t
}

// playStory plays a story total long in every world (the first is the
// one the exit status judges), narrating to n, and returns their
// summaries. With metrics set, it serves the first world's metrics there;
// with status set, its status page.
func playStory(ctx context.Context, total time.Duration, builders []builder, metrics, status string, n *narrator) ([]summary, error) {
	t := newTiming(total)
	dns, err := dnstest.Start("")
	if err != nil {
		return nil, fmt.Errorf("DNS server: %w", err)
	}
	defer dns.Close()
	bus := events.New()
	defer bus.Close()
	var worlds []*world
	for _, b := range builders {
		w, err := newWorld(b, dns, bus, t, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.label, err)
		}
		defer w.close()
		worlds = append(worlds, w)
	}
	n.say("", "a %s story on an in-process DNS server (%s) and loopback backends; probes GET %s every %s, traffic %d requests/s",
		total, dns.Addr(), probePath, ms(t.interval), time.Second/t.every)
	for _, w := range worlds {
		n.say(w.label, "%s, port %d: %s", w.name, w.port, w.p.about)
	}
	if metrics != "" && worlds[0].p.checker != nil {
		url, stop, err := serveMetrics(metrics, bus, worlds[0].p.checker)
		if err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
		defer stop()
		n.say(worlds[0].label, "metrics: %s", url)
	}
	if status != "" && worlds[0].p.upstream != nil {
		url, stop, err := serveStatus(status, statuspage.Of(worlds[0].p.upstream), statuspage.Config{Refresh: time.Second, Window: total})
		if err != nil {
			return nil, fmt.Errorf("-http: %w", err)
		}
		defer stop()
		n.say(worlds[0].label, "status page: %s", url)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var unsubscribe []func()
	for _, w := range worlds {
		unsubscribe = append(unsubscribe, w.follow(bus))
		wg.Go(func() { _ = w.p.run(runCtx) })
		wg.Go(func() { w.traffic(runCtx) })
	}
	err = play(runCtx, worlds, t, n)
	cancel()
	wg.Wait()
	for _, u := range unsubscribe {
		u()
	}
	if err != nil {
		return nil, err
	}
	sums := make([]summary, len(worlds))
	for i, w := range worlds {
		sums[i] = w.summarize()
	}
	ok := sums[0].behaved()
	n.emit(line{Summary: sums, OK: &ok}, summaryLines(sums, t))
	return sums, nil
}

// play plays the steps of the story, then waits for its end.
func play(ctx context.Context, worlds []*world, t timing, n *narrator) error {
	start := n.start
	at := func(u float64) time.Time { return start.Add(time.Duration(u * float64(t.unit))) }
	var ips []any
	for _, b := range worlds[0].backends {
		ips = append(ips, b.IP.String())
	}
	for i, s := range story {
		if !sleepUntil(ctx, at(s.at)) {
			return ctx.Err()
		}
		n.say("", "== %d/%d %s", i+1, len(story), fmt.Sprintf(s.title, ips...))
		next := at(20)
		if i+1 < len(story) {
			next = at(story[i+1].at)
		}
		var wg sync.WaitGroup
		for _, w := range worlds {
			if s.do != nil {
				wg.Go(func() { s.do(ctx, w, next.Add(10*time.Second)) })
			}
		}
		wg.Wait()
		if late := time.Since(next); late > 0 {
			start = start.Add(late) // the rest of the story moves
		}
	}
	if !sleepUntil(ctx, at(20)) {
		return ctx.Err()
	}
	return nil
}

// fail makes backend i answer 500 to every request or, with checkOnly, to
// its probes alone.
func (w *world) fail(i int, checkOnly bool) {
	w.mu.Lock()
	w.failures = append(w.failures, &failure{i: i, checkOnly: checkOnly, start: time.Now()})
	w.mu.Unlock()
	if checkOnly {
		w.backends[i].SetPathStatus(probePath, http.StatusInternalServerError)
	} else {
		w.backends[i].SetStatus(http.StatusInternalServerError)
	}
}

// failing reports whether backend i fails now and, with found, whether its
// checker found it unhealthy since.
func (w *world) failing(i int, found bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.failures, func(f *failure) bool { return f.i == i && f.end.IsZero() && (!found || !f.found.IsZero()) })
}

// recover makes backend i answer 200 again.
func (w *world) recover(i int) {
	w.backends[i].SetStatus(http.StatusOK)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.failures {
		if f.i == i && f.end.IsZero() {
			f.end = time.Now()
		}
	}
}

// change is the step that makes the name resolve to the backends idx.
func change(idx ...int) func(context.Context, *world, time.Time) {
	return func(ctx context.Context, w *world, until time.Time) { w.change(ctx, until, idx) }
}

// change changes DNS to the backends idx. Once the source published it and
// the checker applied it, it says what became of each status held
// unhealthy before: a reset, if it is healthy now while its backend still
// fails. From grace on, it counts the probes of each address that left,
// until it comes back.
func (w *world) change(ctx context.Context, until time.Time, idx []int) {
	was := maps.Clone(w.inDNS)
	for i := range w.backends {
		if st := w.p.status(w.addr(i)); st != health.Unknown {
			w.held[i] = st
		}
		if base, ok := w.removed[i]; ok && slices.Contains(idx, i) {
			delete(w.removed, i)
			n := w.probes(i) - base
			w.sum.RemovedProbes += n
			w.say("%s: %d probes reached it while it was out of DNS", w.backends[i].IP, n)
		}
	}
	if err := w.setDNS(idx...); err != nil {
		w.say("cannot change DNS: %v", err)
		return
	}
	if !poll(ctx, until, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.Equal(w.set, w.ips(idx)) && w.p.applied() >= w.version
	}) {
		w.sum.LateChanges++
		w.say("the change was not published and applied before the next step")
		return
	}
	applied := time.Now()
	var left []int
	for i := range w.backends {
		st, ip := w.p.status(w.addr(i)), w.backends[i].IP
		if was[i] && !w.inDNS[i] {
			left = append(left, i)
			if st != health.Unknown {
				w.say("%s left DNS but is still a target: it goes on being probed", ip)
			}
		}
		switch {
		case w.held[i] != health.Unhealthy || !w.failing(i, false):
		case st == health.Healthy:
			w.sum.Resets++
			w.say("%s RESET to healthy by the change, although it still fails", ip)
		case st == health.Unhealthy && !was[i]:
			w.say("%s is back as unhealthy: remembered", ip)
		case st == health.Unhealthy && w.inDNS[i]:
			w.say("%s still unhealthy after the change", ip)
		case st == health.Unknown:
			w.say("%s removed from the targets", ip)
		}
	}
	if len(left) > 0 && sleepUntil(ctx, applied.Add(w.t.grace)) {
		for _, i := range left {
			w.removed[i] = w.probes(i)
		}
	}
}

// poll reports whether cond held by deadline (checked every 5ms); false if
// ctx ended first.
func poll(ctx context.Context, deadline time.Time, cond func() bool) bool {
	for !cond() {
		if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(5*time.Millisecond)) {
			return false
		}
	}
	return true
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
