package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-go/vigil/health"
)

// The backends of a world, by index: .11 .12 .13 .14 .15 by default.
const (
	sick       = 1 // fails, leaves, comes back, recovers
	checkFails = 2 // its health check fails while its traffic succeeds
	leaving    = 3 // leaves when the service scales down
	joining    = 4 // appears when the service scales up
)

// step is one scene of the story, played at the same moment on every world.
type step struct {
	at    float64 // when it begins, in units (a twentieth of the story)
	title func(w *world) string
	do    func(w *world) error
	// expect waits (until the step's end at most) for what the step should
	// show, and reports whether the world's checker showed it and what it
	// did.
	expect func(ctx context.Context, w *world, end time.Time) (bool, string)
}

// stepResult is what one step showed in one world.
type stepResult struct {
	title string
	ok    bool
	text  string
}

// story is the script of the default run.
var story = []step{
	{
		at: 0,
		title: func(w *world) string {
			return fmt.Sprintf("steady state: %s resolves to %s", w.name, w.ipList(0, 1, 2, 3))
		},
		do: func(w *world) error { return nil }, // set before the pipeline starts
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			ok := waitFor(ctx, end, func() bool {
				for _, i := range []int{0, 1, 2, 3} {
					if w.obs.statusOf(w.ip(i)) != health.Healthy {
						return false
					}
				}
				return true
			})
			return ok, verdict(ok, "4 targets, all healthy; traffic is spread over them", "not all 4 targets healthy yet")
		},
	},
	{
		at:    2,
		title: func(w *world) string { return fmt.Sprintf("%s starts answering 500", w.ip(sick)) },
		do:    func(w *world) error { w.setFailing(sick, true); return nil },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			ok := waitFor(ctx, end, func() bool { return w.obs.statusOf(w.ip(sick)) == health.Unhealthy })
			return ok, verdict(ok, fmt.Sprintf("%s marked unhealthy: traffic avoids it", w.ip(sick)), fmt.Sprintf("%s not detected", w.ip(sick)))
		},
	},
	{
		at:    5,
		title: func(w *world) string { return fmt.Sprintf("scale up: %s appears in DNS", w.ip(joining)) },
		do:    func(w *world) error { return w.setDNS(0, 1, 2, 3, 4) },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			resets := w.obs.resetCount()
			ok := waitFor(ctx, end, func() bool { _, ok := w.obs.firstProbe(w.ip(joining)); return ok })
			d, _ := w.obs.firstProbe(w.ip(joining))
			first := verdict(ok, fmt.Sprintf("%s %s", w.ip(joining), probedAfter(d)), fmt.Sprintf("%s not probed yet", w.ip(joining)))
			if w.obs.resetCount() > resets {
				return false, first + fmt.Sprintf("; but %s was RESET to healthy by the change", w.ip(sick))
			}
			st := w.obs.statusOf(w.ip(sick))
			return ok && st == health.Unhealthy, first + fmt.Sprintf("; %s still %s, kept through the change", w.ip(sick), st)
		},
	},
	{
		at:    7,
		title: func(w *world) string { return fmt.Sprintf("scale down: %s leaves DNS", w.ip(leaving)) },
		do:    func(w *world) error { return w.setDNS(0, 1, 2, 4) },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			ok := waitFor(ctx, end, func() bool { return !w.obs.isApplied(w.ip(leaving)) })
			if !ok {
				return false, "the change was not applied"
			}
			sleepUntil(ctx, end.Add(-time.Until(end)/10))
			n := w.obs.staleProbes(w.ip(leaving))
			return n == 0, verdict(n == 0, fmt.Sprintf("%s no longer probed (0 probes since its removal)", w.ip(leaving)),
				fmt.Sprintf("%s still probed: %d probe%s since its removal", w.ip(leaving), n, plural(n)))
		},
	},
	{
		at:    9,
		title: func(w *world) string { return fmt.Sprintf("%s, still failing, leaves DNS", w.ip(sick)) },
		do:    func(w *world) error { return w.setDNS(0, 2, 4) },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			ok := waitFor(ctx, end, func() bool { return !w.obs.isApplied(w.ip(sick)) })
			if !ok {
				return false, "the change was not applied"
			}
			if st, ok := w.view.remembered(w.obs.addrOf(w.ip(sick))); ok {
				return st == health.Unhealthy, fmt.Sprintf("%s removed; its state is remembered (%s)", w.ip(sick), st)
			}
			return false, fmt.Sprintf("%s: its state is not remembered", w.ip(sick))
		},
	},
	{
		at:    11,
		title: func(w *world) string { return fmt.Sprintf("%s comes back to DNS, still failing", w.ip(sick)) },
		do:    func(w *world) error { return w.setDNS(0, 1, 2, 4) },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			ok := waitFor(ctx, end, func() bool { _, ok := w.obs.returned(w.ip(sick)); return ok })
			st, _ := w.obs.returned(w.ip(sick))
			switch {
			case !ok:
				return false, "the change was not applied"
			case st == health.Unhealthy:
				return true, fmt.Sprintf("%s is back as unhealthy, as remembered: still no traffic to it", w.ip(sick))
			default:
				return false, fmt.Sprintf("%s is back as %s: traffic goes to a failing backend", w.ip(sick), st)
			}
		},
	},
	{
		at:    13,
		title: func(w *world) string { return fmt.Sprintf("%s recovers", w.ip(sick)) },
		do:    func(w *world) error { w.setFailing(sick, false); return nil },
		expect: func(ctx context.Context, w *world, end time.Time) (bool, string) {
			start := time.Now()
			ok := waitFor(ctx, end, func() bool { return w.obs.statusOf(w.ip(sick)) == health.Healthy })
			return ok, verdict(ok, fmt.Sprintf("%s healthy again after %s: traffic returns", w.ip(sick), ms(time.Since(start))),
				fmt.Sprintf("%s not healthy yet", w.ip(sick)))
		},
	},
	{
		at: 15.5,
		title: func(w *world) string {
			return fmt.Sprintf("%s's health check (%s) starts answering 500; its traffic still succeeds", w.ip(checkFails), probePath)
		},
		do:     func(w *world) error { w.setCheckFailing(checkFails, true); return nil },
		expect: expectCheckFailure,
	},
}

// expectCheckFailure is what the last step should show: the backend whose
// health check fails is marked unhealthy although its traffic succeeds, and
// no request reaches it from then on. It counts, at the backend, the
// requests sent to it after detection or, when there is none, after the
// time two failed probes take.
func expectCheckFailure(ctx context.Context, w *world, end time.Time) (bool, string) {
	ip := w.ip(checkFails)
	last := end.Add(-time.Until(end) / 10) // leave the step its state line
	waitFor(ctx, last, func() bool { f, _ := w.obs.failureAt(ip); return !f.detected.IsZero() })
	sleepUntil(ctx, last)
	f, ok := w.obs.failureAt(ip)
	if !ok {
		return false, fmt.Sprintf("%s: its health check is not failing", ip)
	}
	from := f.countsFrom(w.obs.allow)
	n := w.requestsTo(ip, from, time.Time{})
	st, _ := w.view.target(w.obs.addrOf(ip))
	switch {
	case f.detected.IsZero() && st.verdicts == "":
		return false, fmt.Sprintf("%s never marked unhealthy: its traffic's successes keep resetting the failures its probes count (now %s, %s); %d request%s reached it, sent more than %s after its health check began failing",
			ip, count(st.successes, "success", "successes"), count(st.failures, "failure", "failures"), n, plural(n), ms(from.Sub(f.start)))
	case f.detected.IsZero():
		return false, fmt.Sprintf("%s never marked unhealthy (%s); %d request%s reached it, sent more than %s after its health check began failing",
			ip, st.verdicts, n, plural(n), ms(from.Sub(f.start)))
	case n > 0:
		return false, fmt.Sprintf("%s marked unhealthy %s after its health check began failing, but %d request%s reached it since",
			ip, ms(f.detected.Sub(f.start)), n, plural(n))
	}
	why := "its traffic still succeeds"
	if st.verdicts != "" {
		why += ": " + st.verdicts
	}
	return true, fmt.Sprintf("%s marked unhealthy %s after its health check began failing, although %s; 0 requests reached it since",
		ip, ms(f.detected.Sub(f.start)), why)
}

// storyEnd is when the story ends, in units.
const storyEnd = 20

// play runs the story on worlds, emitting each step and what each world
// did. It returns early when ctx ends.
func play(ctx context.Context, sc scale, worlds []*world, emit func(event)) error {
	for i, s := range story {
		if !sleepUntil(ctx, sc.at(s.at)) {
			return ctx.Err()
		}
		e := sc.clock.newEvent(evStep, "", "%d/%d %s", i+1, len(story), s.title(worlds[0]))
		emit(e)
		for _, w := range worlds {
			w.markStep() // the step's state line counts traffic shares from here
			if err := s.do(w); err != nil {
				return err
			}
		}
		end := sc.at(storyEnd)
		if i+1 < len(story) {
			end = sc.at(story[i+1].at)
		}
		var wg sync.WaitGroup
		for _, w := range worlds {
			wg.Go(func() {
				ok, text := s.expect(ctx, w, end)
				if ctx.Err() == nil {
					w.steps = append(w.steps, stepResult{fmt.Sprintf("%d/%d %s", i+1, len(story), s.title(w)), ok, text})
				}
				emit(sc.clock.newEvent(evCheck, w.label, "%s", text))
			})
		}
		wg.Wait()
		if !sleepUntil(ctx, end.Add(-sc.unit/10)) {
			return ctx.Err()
		}
		for _, w := range worlds {
			e := sc.clock.newEvent(evState, w.label, "")
			e.Targets = w.stepRows()
			e.Text = stateLine(e.Targets)
			emit(e)
		}
	}
	if !sleepUntil(ctx, sc.at(storyEnd)) {
		return ctx.Err()
	}
	return nil
}

// verdict picks the description of what happened.
func verdict(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// waitFor polls cond until it holds (true), deadline passes or ctx ends.
func waitFor(ctx context.Context, deadline time.Time, cond func() bool) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// count says n of a thing, singular or plural.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// plural returns "s" unless n is 1.
func plural[N int | int64](n N) string {
	if n == 1 {
		return ""
	}
	return "s"
}
