package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// SetProbeFilter makes the checker probe only the targets f selects (nil:
// every target): when a fleet of clients shares verdicts, each probes the
// addresses assigned to it and takes the others' verdicts from the fleet
// (SetActive). Calling it again re-applies the selection at once: targets
// no longer selected are not probed again, newly selected ones are probed
// now. A probe in flight on a target no longer selected ends dropped
// (ProbesDropped): its result, which may be older than the verdict the
// fleet gives the target meanwhile, is never applied. f is called with the
// checker's lock held: it must be fast and not call the checker.
func (c *Checker) SetProbeFilter(f func(resolver.Address) bool) {
	c.mu.Lock()
	c.probeFilter = f
	now := time.Now()
	for _, t := range c.targets {
		switch {
		case t.inFlight:
			if f != nil && !f(t.addr) {
				t.epoch++ // its result is dropped as it ends
			}
		case !c.probed(t):
			c.dequeue(t)
		case t.index < 0:
			c.scheduleNow(t, now)
		}
	}
	c.unlockAndFlush()
}

// SetActive sets a's active verdict to s (Healthy or Unhealthy) for the
// reason given, as reached by probes elsewhere: another client of a fleet
// sharing its verdicts. The active counters start over; the passive verdict,
// which describes this client's own traffic, is not touched. It reports
// whether a is a target; a Status other than Healthy or Unhealthy changes
// nothing. A change is published and logged like any other.
func (c *Checker) SetActive(a resolver.Address, s Status, reason string) bool {
	c.mu.Lock()
	t := c.targets[a.Key()]
	if t == nil || (s != Healthy && s != Unhealthy) {
		c.mu.Unlock()
		return t != nil
	}
	before := t.state.verdicts()
	changed := t.state.active.status != s || t.state.active.untilFirst
	t.state.active = active{verdict: verdict{status: s}}
	why := ""
	if changed {
		why = reason
	}
	c.settle(t, before, why, time.Now())
	c.unlockAndFlush()
	return true
}
