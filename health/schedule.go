package health

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// interval returns the active probe interval for status s; < 0: none.
func (c *Checker) interval(s Status) time.Duration {
	if s == Unhealthy {
		return c.cfg.Active.Unhealthy.Interval
	}
	return c.cfg.Active.Healthy.Interval
}

// jitter returns d ± 5%.
func jitter(d time.Duration) time.Duration {
	span := int64(d / 10)
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span))
}

// enqueue queues t for a probe at next (or moves it there); c.mu is held.
// While a probe of t's address from before it left is still in flight, t is
// not queued: finish queues it when that probe ends, so an address never has
// two probes in flight.
func (c *Checker) enqueue(t *target, next time.Time) {
	if len(c.departed) > 0 {
		if d := c.departed[t.addr.Key()]; d != nil && d != t {
			return
		}
	}
	t.next = next
	c.queue.put(t)
	if c.queue.first(t) {
		c.poke()
	}
}

// dequeue takes t out of the queue; c.mu is held.
func (c *Checker) dequeue(t *target) { c.queue.remove(t) }

// poke wakes the scheduler without blocking.
func (c *Checker) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// probed reports whether t is probed actively now: its status has an
// interval and the probe filter, if any, selects it; c.mu is held.
func (c *Checker) probed(t *target) bool {
	return c.interval(t.state.status()) >= 0 && (c.probeFilter == nil || c.probeFilter(t.addr))
}

// scheduleNow queues t for an immediate probe, if it is probed actively;
// c.mu is held.
func (c *Checker) scheduleNow(t *target, now time.Time) {
	if !c.probed(t) {
		c.dequeue(t)
		return
	}
	c.enqueue(t, now)
}

// scheduleAfter queues t one jittered interval after start (clamped to now);
// c.mu is held.
func (c *Checker) scheduleAfter(t *target, start, now time.Time) {
	if !c.probed(t) {
		c.dequeue(t)
		return
	}
	next := start.Add(jitter(c.interval(t.state.status())))
	if next.Before(now) {
		next = now
	}
	c.enqueue(t, next)
}

// rescheduleFromLast queues t by its last probe, after its status or the
// intervals changed; c.mu is held.
func (c *Checker) rescheduleFromLast(t *target, now time.Time) {
	if t.state.lastProbe.IsZero() {
		c.scheduleNow(t, now)
		return
	}
	c.scheduleAfter(t, t.state.lastProbe, now)
}

// job is a probe to run.
type job struct {
	t     *target
	epoch uint64
}

// schedule starts due probes, each on a goroutine of its own tracked by
// probes, at most maxProbes at once; ends ejections at their deadlines; and
// runs outlier detection at its interval, until ctx ends.
func (c *Checker) schedule(ctx context.Context, probes *sync.WaitGroup) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	c.mu.Lock()
	c.outlierAt = time.Time{}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		now := time.Now()
		next := c.expireEjections(now)
		if at := c.outliers(now); !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
		for c.stats.InFlight < c.maxProbes && c.queue.head() != nil {
			t := c.queue.head()
			if t.next.After(now) {
				if next.IsZero() || t.next.Before(next) {
					next = t.next
				}
				break
			}
			c.queue.pop()
			t.inFlight = true
			c.stats.InFlight++
			j := job{t: t, epoch: t.epoch}
			probes.Go(func() { c.probe(ctx, j) })
		}
		c.unlockAndFlush()

		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// release marks t's probe as over; a scheduler waiting for a free probe
// slot is woken. c.mu is held.
func (c *Checker) release(t *target) {
	t.inFlight = false
	if c.stats.InFlight == c.maxProbes {
		c.poke()
	}
	c.stats.InFlight--
}

// finish ends t's probe without applying its outcome and, if t is still a
// target, queues its next probe; c.mu is held.
func (c *Checker) finish(t *target, now time.Time) {
	if !t.inFlight {
		return
	}
	c.release(t)
	k := t.addr.Key()
	switch {
	case c.targets[k] == t:
		c.rescheduleFromLast(t, now)
	case c.departed[k] == t:
		// t left while probed; if its address is back, probe it now.
		delete(c.departed, k)
		if nt := c.targets[k]; nt != nil && !nt.inFlight && nt.index < 0 {
			c.scheduleNow(nt, now)
		}
	}
}
