package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
)

// play plays the fleet story; it reports false when it could not go on
// (ctx ended, a step never happened), true when it ran to the end, the
// results saying what it showed.
func (s *flStory) play(ctx context.Context) bool {
	const r = fleet.DefaultProbers
	within := 20 * s.interval // no step may take longer

	// 1. Alone: every client probes every backend.
	if !flWaitFor(ctx, within, func() bool {
		for _, c := range s.clients {
			if len(c.up.Checker().Targets()) != flBackends {
				return false
			}
		}
		return slices.Min(s.probes()) >= flClients
	}) {
		s.say("the clients did not resolve %s and probe its backends within %v", flName, within)
		return false
	}
	// The clients' first probes went out together: measure from half an
	// interval on, between their probes rather than on them.
	if !flSleep(ctx, s.interval/2) {
		return false
	}
	alone, ok := s.rate(ctx, 4)
	if !ok {
		return false
	}
	s.say("%d clients probe alone: each backend gets %s probes per interval (every client probes every backend)",
		flClients, flRates(alone))

	// 2. The clients join the fleet one by one.
	for _, c := range s.clients {
		if err := c.join(); err != nil {
			s.say("%s cannot join: %v", c.id, err)
			return false
		}
		s.say("%s joins the fleet", c.id)
		rates, ok := s.rate(ctx, 3)
		if !ok {
			return false
		}
		s.say("         probes per backend per interval: %s", flRates(rates))
	}
	if !flWaitFor(ctx, within, s.settled) {
		s.say("the fleet did not settle on %d probers per backend within %v", r, within)
		return false
	}
	shared, ok := s.rate(ctx, 6)
	if !ok {
		return false
	}
	s.say("all %d clients share: each backend gets %s probes per interval, from %s; the others apply the probers' verdicts",
		flClients, flRates(shared), flRates(alone))
	for i, a := range s.addrs {
		s.say("         %s is probed by %s", s.backends[i].IP, strings.Join(s.probersOf(a), " and "))
	}
	fell := slices.Min(alone) >= flClients-1 && slices.Min(shared) >= r-0.5 && slices.Max(shared) <= r+0.5
	s.result(fell, "probes per backend per interval fell from %.1f to %.1f as the clients joined (r = %d, N = %d)",
		flAvg(alone), flAvg(shared), r, flClients)

	// 3. A backend fails: every client sees it, most through the fleet.
	failing, a := s.backends[1], s.addrs[1]
	s.say("backend %s starts failing its health check (HTTP 500); its probers are %s",
		failing.IP, strings.Join(s.probersOf(a), " and "))
	start := time.Now()
	failing.SetPathStatus("/healthz", 500)
	seen := map[string]time.Duration{}
	ok = flWaitFor(ctx, within, func() bool {
		for _, c := range s.present() {
			if _, done := seen[c.id]; done || c.up.Checker().Status(a) != health.Unhealthy {
				continue
			}
			d := time.Since(start)
			seen[c.id] = d
			t, _ := c.up.Checker().Target(a)
			s.say("         %s holds it unhealthy after %v: %s", c.id, d.Round(time.Millisecond), t.Reason)
		}
		return len(seen) == len(s.present())
	})
	var slowest time.Duration
	for _, d := range seen {
		slowest = max(slowest, d)
	}
	goal := s.interval + 100*time.Millisecond
	if !ok {
		s.say("only %d of %d clients hold it unhealthy after %v", len(seen), len(s.present()), within)
	} else {
		s.say("every client holds %s unhealthy after %v (goal: one interval and 100ms, %v)", failing.IP, slowest.Round(time.Millisecond), goal)
	}
	s.result(ok && slowest <= goal, "a failing backend was unhealthy at every client after %v (goal %v)", slowest.Round(time.Millisecond), goal)

	// 4. A prober leaves; another takes over.
	x := s.addrs[2]
	var leaver *flClient
	for _, c := range s.present() {
		if slices.Contains(s.probersOf(x), c.id) {
			leaver = c
			break
		}
	}
	if leaver == nil {
		s.say("nobody probes %s", x)
		return false
	}
	s.say("%s, a prober of %s, leaves (its process stops)", leaver.id, s.backends[2].IP)
	start = time.Now()
	leaver.leave()
	ok = flWaitFor(ctx, within, func() bool {
		ps := s.probersOf(x)
		return len(ps) == r && !slices.Contains(ps, leaver.id)
	})
	took := time.Since(start)
	if !ok {
		s.say("nobody took over probing %s within %v", s.backends[2].IP, within)
		return false
	}
	probers := s.probersOf(x)
	s.say("%s probe %s now: taken over after %v", strings.Join(probers, " and "), s.backends[2].IP, took.Round(time.Millisecond))
	after, ok := s.rate(ctx, 4)
	if !ok {
		return false
	}
	s.say("%s gets %.1f probes per interval from %s", s.backends[2].IP, after[2], strings.Join(s.probersOf(x), " and "))
	s.result(took <= s.interval && after[2] >= r-0.5 && after[2] <= r+0.5,
		"a prober that left was replaced after %v (within one interval, %v); its backend kept %.1f probes per interval",
		took.Round(time.Millisecond), s.interval, after[2])

	// 5. The failed backend recovers.
	start = time.Now()
	failing.SetPathStatus("/healthz", 0)
	s.say("backend %s recovers", failing.IP)
	ok = flWaitFor(ctx, within, func() bool {
		for _, c := range s.present() {
			if c.up.Checker().Status(a) != health.Healthy {
				return false
			}
		}
		return true
	})
	if ok {
		s.say("every client holds %s healthy again after %v (two passing probes)", failing.IP, time.Since(start).Round(time.Millisecond))
	}
	s.result(ok, "the recovered backend was healthy again at every client")
	return ctx.Err() == nil
}

func flAvg(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
