package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
)

// playFleet plays the fleet story, 40 probe intervals long, narrating to
// n: five clients, each a vigil.New upstream of a world's name, probe its
// backends alone, then join a fleet on an embedded NATS server; a
// backend's health check fails, then recovers. Probes are counted at the
// backends.
func playFleet(ctx context.Context, interval time.Duration, n *narrator) error {
	dir, err := os.MkdirTemp("", "vigil-demo-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := natstest.Start(dir)
	if err != nil {
		return err
	}
	defer ns.Close()
	dns, err := dnstest.Start("")
	if err != nil {
		return err
	}
	defer dns.Close()
	w, err := newWorld(builder{label: "fleet"}, dns, nil, newTiming(40*interval), n)
	if err != nil {
		return err
	}
	defer w.close()
	bs := w.backends[:4] // those in DNS
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var clients []*vigil.Upstream
	for range 5 {
		u, err := vigil.New(vigil.Config{
			Name: w.name, Port: w.port, Resolver: w.resolverConfig(),
			Health: health.Config{Active: health.Active{Path: probePath, Timeout: w.t.probeTimeout,
				Healthy:   health.HealthyRules{Interval: interval},
				Unhealthy: health.UnhealthyRules{Interval: interval, HTTPFailures: 1},
			}},
		})
		if err != nil {
			return err
		}
		wg.Go(func() { _ = u.Run(runCtx) })
		clients = append(clients, u)
	}
	n.say("", "5 clients check 4 backends (%s) every %s; they will share verdicts on NATS JetStream (embedded, %s)",
		w.name, ms(interval), ns.URL())

	start := time.Now()
	at := func(k int) time.Time { return start.Add(time.Duration(k) * interval) }
	// rates says how many probes each backend got per interval from now
	// (interval from) until interval to.
	rates := func(from, to int, what string) bool {
		before := make([]int, len(bs))
		for i, b := range bs {
			before[i] = b.Paths()[probePath]
		}
		if !sleepUntil(ctx, at(to)) {
			return false
		}
		var r []string
		for i, b := range bs {
			r = append(r, fmt.Sprintf("%.1f", float64(b.Paths()[probePath]-before[i])/float64(to-from)))
		}
		n.say("", "%s: probes per backend per interval, counted at the backends: %s", what, strings.Join(r, " "))
		return true
	}
	// wait waits until cond holds, by interval k or, on a busy machine, up
	// to 10s later: then the rest of the story moves.
	wait := func(k int, cond func() bool) bool {
		ok := poll(ctx, at(k).Add(10*time.Second), cond)
		if late := time.Since(at(k)); late > 0 {
			start = start.Add(late)
		}
		return ok
	}
	// all returns whether cond holds for every client.
	all := func(cond func(i int, c *health.Checker) bool) func() bool {
		return func() bool {
			ok := true
			for i, u := range clients {
				ok = cond(i, u.Checker()) && ok
			}
			return ok
		}
	}
	if !wait(4, all(func(_ int, c *health.Checker) bool { return len(c.Targets()) == 4 })) ||
		!sleepUntil(ctx, at(4)) || !rates(4, 10, "alone") {
		return errors.New("the clients did not resolve " + w.name)
	}

	var fleets []*fleet.Fleet
	for i, u := range clients {
		f, err := fleet.New(fleet.Config{URL: ns.URL(), Member: fmt.Sprintf("client-%d", i)})
		if err == nil {
			err = f.Attach(u)
		}
		if err != nil {
			return fmt.Errorf("client-%d cannot join: %w", i, err)
		}
		wg.Go(func() { _ = f.Run(runCtx) })
		fleets = append(fleets, f)
		n.say(f.Member(), "joins the fleet")
	}
	if !wait(10, func() bool { return !slices.ContainsFunc(fleets, func(f *fleet.Fleet) bool { return !f.Sharing() }) }) ||
		!sleepUntil(ctx, at(16)) || !rates(16, 22, "sharing") {
		return errors.New("the clients did not share verdicts")
	}

	ip, a, failed := bs[1].IP, w.addr(1), time.Now()
	n.say("", "%s's health check answers 500", ip)
	bs[1].SetPathStatus(probePath, 500)
	seen := map[int]bool{}
	if !wait(30, all(func(i int, c *health.Checker) bool {
		if t, _ := c.Target(a); t.Status == health.Unhealthy && !seen[i] {
			seen[i] = true
			n.say(fmt.Sprintf("client-%d", i), "holds %s unhealthy after %s: %s", ip, ms(time.Since(failed)), t.Reason)
		}
		return seen[i]
	})) || !sleepUntil(ctx, at(30)) {
		return fmt.Errorf("not every client found %s unhealthy", ip)
	}

	bs[1].SetPathStatus(probePath, 0)
	n.say("", "%s recovers", ip)
	recovered := time.Now()
	if !wait(40, all(func(_ int, c *health.Checker) bool { return c.Status(a) == health.Healthy })) {
		return fmt.Errorf("not every client found %s healthy again", ip)
	}
	n.say("", "every client holds %s healthy again, %s after it recovered", ip, ms(time.Since(recovered)))
	if !sleepUntil(ctx, at(40)) {
		return ctx.Err()
	}
	ok := true
	n.emit(line{Text: "the fleet story is over", OK: &ok}, nil)
	return nil
}
