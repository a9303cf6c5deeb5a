package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// SetTargets makes addrs the whole target set, reconciling by set
// difference: targets in both sets are not touched (same status, counters and
// schedule; only Weight and Priority follow addrs), new ones are queued for
// an immediate probe, taking their remembered state back if they have one,
// and removed ones stop being probed before SetTargets returns and move into
// memory. Duplicates in addrs count once (the first wins).
//
// Changes from the bus set the whole target set too; the latest call wins.
func (c *Checker) SetTargets(addrs []resolver.Address) {
	c.mu.Lock()
	added, removed := c.reconcile(addrs, time.Now())
	c.mu.Unlock()
	if added+removed > 0 {
		c.log.Debug("health: targets set", "name", c.name, "added", added, "removed", removed)
	}
}

// applyChange applies a Change from the bus unless it is not newer than the
// last applied one (R4).
func (c *Checker) applyChange(ch resolver.Change) {
	c.mu.Lock()
	if ch.Name != c.name || (c.stats.ChangesApplied > 0 && ch.Version <= c.stats.Version) {
		last := c.stats.Version
		c.stats.ChangesIgnored++
		c.mu.Unlock()
		c.log.Debug("health: change ignored", "name", c.name, "version", ch.Version, "applied", last)
		return
	}
	c.stats.Version = ch.Version
	c.stats.ChangesApplied++
	added, removed := c.reconcile(ch.Addresses, time.Now())
	c.mu.Unlock()
	c.log.Debug("health: change applied", "name", c.name, "version", ch.Version,
		"added", added, "removed", removed)
}

// reconcile makes addrs the target set; c.mu is held.
func (c *Checker) reconcile(addrs []resolver.Address, now time.Time) (added, removed int) {
	c.stamp++
	changed := false
	unique := 0
	for _, a := range addrs {
		k := keyOf(a)
		t := c.targets[k]
		if t != nil {
			if t.seen == c.stamp {
				continue // duplicate
			}
			t.seen = c.stamp
			unique++
			if t.addr != a {
				t.addr = a // Weight or Priority
				changed = true
			}
			continue
		}
		t = c.newTarget(k, a, now)
		t.seen = c.stamp
		unique++
		c.targets[k] = t
		c.scheduleNow(t, now)
		added++
	}
	if len(c.targets) > unique {
		for k, t := range c.targets {
			if t.seen != c.stamp {
				c.remove(k, t)
				removed++
			}
		}
	}
	if changed || added > 0 || removed > 0 {
		c.bump()
	}
	return added, removed
}

// newTarget returns a target for a, with its remembered state (R3) or the
// initial one; c.mu is held.
func (c *Checker) newTarget(k key, a resolver.Address, now time.Time) *target {
	t := &target{addr: a, index: -1}
	if r, ok := c.mem.take(k); ok {
		t.state = r.state
		return t
	}
	t.state = state{status: c.cfg.Initial, lastChange: now, untilFirst: c.cfg.Initial == Unhealthy}
	return t
}

// remove stops probing t and moves its state into memory (R2). A probe of t
// in flight finds t gone and changes nothing. c.mu is held.
func (c *Checker) remove(k key, t *target) {
	c.dequeue(t)
	delete(c.targets, k)
	c.mem.put(k, remembered{addr: t.addr, state: t.state})
}
