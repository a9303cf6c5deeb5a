package health

import (
	"time"
)

// Update validates cfg and applies it without resetting any status (R5):
//   - a threshold that was lowered is applied to the current counters at once
//     (a healthy target whose failures reach the new limit turns unhealthy);
//   - new probe settings (Type, Path, Host, Port, Timeout) make every target's
//     next probe use them at once; outcomes of probes still in flight with the
//     old settings are dropped;
//   - new intervals reschedule probes from each target's last probe;
//   - a new Memory size keeps the most recently departed targets.
//
// cfg.Name must not change. On error nothing is applied.
func (c *Checker) Update(cfg Config) error {
	n, err := normalize(cfg)
	if err != nil {
		return err
	}
	if n.Name != c.name {
		return &ConfigError{"Name", "cannot change from " + c.name + " to " + n.Name}
	}
	c.mu.Lock()
	old := c.cfg
	oldActive, oldPassive := c.active, c.passive
	c.cfg = n
	c.active, c.passive = activeThresholds(n), passiveThresholds(n)
	if n.Memory != old.Memory {
		c.mem = c.mem.resize(n.Memory)
	}
	probeChanged := !probeSettingsEqual(old.Active, n.Active)
	intervalsChanged := old.Active.Healthy.Interval != n.Active.Healthy.Interval ||
		old.Active.Unhealthy.Interval != n.Active.Unhealthy.Interval
	now := time.Now()
	for _, t := range c.targets {
		s := t.state.reevaluate(oldActive, c.active)
		if s == t.state.status {
			s = t.state.reevaluate(oldPassive, c.passive)
		}
		if s != t.state.status {
			c.setStatus(t, s, now) // reschedules t
		}
		switch {
		case probeChanged:
			t.epoch++
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
