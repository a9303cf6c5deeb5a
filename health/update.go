package health

import (
	"slices"
	"time"
)

// Update validates cfg and applies it without resetting any status or
// verdict (R5):
//   - a threshold that was lowered is applied to the current counters of its
//     verdict at once (a healthy verdict whose failures reach the new limit
//     turns unhealthy, a passive one is ejected);
//   - new probe settings (Type, Prober, Path, Host, Port, Timeout, Headers,
//     ExpectBody) make every target's next probe use them at once; outcomes
//     of probes still in flight with the old settings are dropped;
//   - new intervals reschedule probes from each target's last probe;
//   - new ejection durations apply to the next ejection; ejections under way
//     keep their end; a new outlier interval starts a new interval;
//   - a new Memory size keeps the most recently departed targets (of the
//     checker's own memory; a WithMemory one keeps its size).
//
// cfg.Name must not change (it is compared normalized). On error nothing is
// applied.
func (c *Checker) Update(cfg Config) error {
	n, err := normalize(cfg)
	if err != nil {
		return err
	}
	if n.Name != c.name {
		return &ConfigError{Field: "Name", Reason: "cannot change from " + c.name + " to " + n.Name}
	}
	c.mu.Lock()
	old, oldRules := c.cfg, c.rules
	c.cfg, c.rules = n, rulesOf(n)
	if n.Memory != old.Memory && !c.shared {
		c.mem = c.mem.resize(n.Memory)
	}
	if n.Passive.Outlier.Interval != old.Passive.Outlier.Interval {
		c.outlierAt = time.Time{} // a new interval starts now (or detection stops)
		c.poke()
	}
	probeChanged := !probeSettingsEqual(old.Active, n.Active)
	intervalsChanged := old.Active.Healthy.Interval != n.Active.Healthy.Interval ||
		old.Active.Unhealthy.Interval != n.Active.Unhealthy.Interval
	now := time.Now()
	// In address order, so that where the ejection cap lets only some
	// targets go, which ones does not depend on map order.
	ts := make([]*target, 0, len(c.targets))
	for _, t := range c.targets {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *target) int { return a.addr.Key().Compare(b.addr.Key()) })
	for _, t := range ts {
		before := t.state.verdicts()
		c.settle(t, before, t.state.reevaluate(&oldRules, &c.rules, c.mayEject(), now, c.jitter()), now)
		switch {
		case probeChanged:
			t.epoch++
			c.dropConn(t) // opened for the old settings
			if !t.inFlight {
				c.scheduleNow(t, now)
			}
		case intervalsChanged && !t.inFlight:
			c.rescheduleFromLast(t, now)
		}
	}
	c.unlockAndFlush()
	c.log.Debug("health: configuration updated", "name", c.name,
		"probe_changed", probeChanged, "intervals_changed", intervalsChanged)
	return nil
}
