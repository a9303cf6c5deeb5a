package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

// Names the story's DNS server serves.
const (
	vigilName    = "api.demo.test"
	baselineName = "api-rebuild.demo.test"
)

// runStory plays the story and returns the exit code.
func runStory(ctx context.Context, opts storyOptions, stdout, stderr io.Writer) int {
	sc := newScale(time.Duration(float64(opts.duration)/opts.speed), opts.rate)
	r := newRenderer(stdout, opts.json)

	dns, err := dnstest.Start("")
	if err != nil {
		fmt.Fprintln(stderr, "demo: DNS server:", err)
		return exitFail
	}
	defer dns.Close()
	answers := newAnswerLog()
	dns.SetMisbehavior(answers.record)
	logger, closeLog, err := openLog(opts.log)
	if err != nil {
		fmt.Fprintln(stderr, "demo: -log:", err)
		return exitFail
	}
	defer closeLog()
	worlds, err := buildWorlds(sc, dns, opts, logger)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitFail
	}
	for _, w := range worlds {
		w.obs.answers = answers
	}
	defer func() {
		for _, w := range worlds {
			backendtest.CloseAll(w.backends)
			w.bus.Close()
		}
	}()
	for _, w := range worlds {
		if err := w.setDNS(0, 1, 2, 3); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return exitFail
		}
	}
	for _, e := range introduction(sc, dns, worlds) {
		r.event(e)
	}
	if opts.metrics != "" {
		m, err := serveMetrics(opts.metrics, worlds[0])
		if err != nil {
			fmt.Fprintln(stderr, "demo: -metrics:", err)
			return exitFail
		}
		defer m.close()
		r.event(sc.clock.newEvent(evStart, worlds[0].label, "metrics: %s", m.url))
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range worlds {
		wg.Go(func() { w.run(runCtx, r.event) })
	}
	if r.live() {
		wg.Go(func() { drawLoop(runCtx, worlds, r) })
	}
	err = play(runCtx, sc, worlds, r.event)
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "demo: interrupted")
		return exitFail
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitFail
	}
	if r.live() {
		r.frame(frameLines(worlds))
	}

	sums := make([]*summary, len(worlds))
	for i, w := range worlds {
		sums[i] = summarize(w)
	}
	e := sc.clock.newEvent(evSummary, "", "the story is over")
	e.Summary = sums
	ok := sums[0].Passed // the baseline is expected to fail its checks
	e.Passed = &ok
	r.summary(e, summaryLines(sc, sums))
	if !ok {
		return exitFail
	}
	return exitOK
}

// buildWorlds starts the backends and builds vigil's world, logging to
// logger, and, with -compare, the baseline's on other addresses.
func buildWorlds(sc scale, dns *dnstest.Server, opts storyOptions, logger *slog.Logger) ([]*world, error) {
	bs, err := startBackends(0)
	if err != nil {
		return nil, err
	}
	newVigil := opts.newVigil
	if newVigil == nil {
		newVigil = func(sc scale, dns *dnstest.Server, name string, bs []*backendtest.Backend) (*world, error) {
			return newVigilWorld(sc, dns, name, bs, vigil.WithLogger(logger))
		}
	}
	v, err := newVigil(sc, dns, vigilName, bs)
	if err != nil {
		backendtest.CloseAll(bs)
		return nil, err
	}
	worlds := []*world{v}
	if opts.compare {
		bb, err := startBackends(int(bs[0].IP.As4()[3]))
		if err != nil {
			backendtest.CloseAll(bs)
			return nil, err
		}
		b, err := newRebuildWorld(sc, dns, baselineName, bb)
		if err != nil {
			backendtest.CloseAll(bs)
			backendtest.CloseAll(bb)
			return nil, err
		}
		worlds = append(worlds, b)
	}
	return worlds, nil
}

// introduction says what runs where.
func introduction(sc scale, dns interface{ Addr() string }, worlds []*world) []event {
	c := sc.clock
	ttl := fmt.Sprintf("TTL %ds", sc.ttl)
	if sc.ttl == 0 {
		ttl = "TTL 0, re-resolved every " + ms(sc.minTTL)
	}
	out := []event{
		c.newEvent(evStart, "", "vigil demo: a %s story; DNS server on %s (in process); traffic only to loopback", sc.total.Round(100*time.Millisecond), dns.Addr()),
	}
	for _, w := range worlds {
		what := "vigil: one vigil.New upstream (resolver.Source -> events.Bus -> health.Checker -> balancer) carrying the traffic through its Transport; an active verdict from the probes and a passive one from the traffic, kept apart"
		if w.label == "rebuild" {
			what = "rebuild: the same DNS source -> a checker destroyed and rebuilt on every change (internal/rebuild), probe Host " + baselineCheckHost +
				"; the traffic's outcomes count on the probes' counters, shared as in lua-resty-healthcheck"
		}
		out = append(out, c.newEvent(evStart, w.label, "%s", what),
			c.newEvent(evStart, w.label, "  %s (%s) -> backends %s-%s port %d; probes GET %s every %s; traffic %d req/s to %s<n>",
				w.name, ttl, w.ip(0), w.ip(4), w.port, probePath, ms(sc.interval), sc.rate, trafficPath))
	}
	return out
}

// drawLoop redraws the live table until ctx ends.
func drawLoop(ctx context.Context, worlds []*world, r renderer) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r.frame(frameLines(worlds))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// frameLines is the live table of every world.
func frameLines(worlds []*world) []string {
	var lines []string
	for i, w := range worlds {
		if i > 0 {
			lines = append(lines, "")
		}
		lines = append(lines, tableLines(w, w.rows())...)
	}
	return lines
}
