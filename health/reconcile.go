package health

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// SetTargets makes addrs the whole target set, reconciling by set
// difference: targets in both sets are not touched (same status, counters and
// schedule; only Weight and Priority follow addrs), new ones are queued for
// an immediate probe (or, while a probe of the address from before it left is
// still in flight, for when that probe ends), taking their remembered state
// back if they have one, and removed ones stop being probed before SetTargets
// returns and move into memory. Duplicates in addrs count once (the first
// wins).
//
// Changes from the bus set the whole target set too; the latest call wins.
func (c *Checker) SetTargets(addrs []resolver.Address) {
	if c.filter != nil {
		addrs = c.filter(addrs)
	}
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
	addrs := ch.Addresses
	if c.filter != nil && ch.Name == c.name {
		addrs = c.filter(addrs) // the caller's code: outside c.mu
	}
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
	added, removed := c.reconcile(addrs, time.Now())
	if c.stats.ChangesApplied == 1 && added+removed == 0 {
		c.bump() // the first Change is news even when it changes nothing: Changed tells waiters
	}
	c.mu.Unlock()
	c.log.Debug("health: change applied", "name", c.name, "version", ch.Version,
		"added", added, "removed", removed)
}

// reconcile makes addrs the target set; c.mu is held.
//
// When addrs is in canonical order without duplicates (as every Change is)
// and the previous set was too, the difference is found by merging the two
// sorted lists, which touches no target in both sets. Otherwise every
// address is looked up.
func (c *Checker) reconcile(addrs []resolver.Address, now time.Time) (added, removed int) {
	if c.lastSorted && len(c.last) == len(c.targets) {
		if added, removed, ok := c.merge(addrs, now); ok {
			return added, removed
		}
	}
	added, removed = c.lookupAll(addrs, now)
	c.lastSorted = isCanonical(addrs)
	if c.lastSorted {
		c.last = append(c.last[:0], addrs...)
	} else {
		c.last = c.last[:0]
	}
	return added, removed
}

// compareKeys orders addresses by identity (resolver.Key.Compare).
func compareKeys(a, b *resolver.Address) int { return a.Key().Compare(b.Key()) }

// sameAddress reports whether a and b are equal in every field, like ==
// but cheaper: the generated struct equality is not inlined.
func sameAddress(a, b *resolver.Address) bool {
	return a.Port == b.Port && a.Weight == b.Weight && a.Priority == b.Priority &&
		a.IP == b.IP && a.Hostname == b.Hostname
}

// isCanonical reports whether addrs is strictly increasing by identity.
func isCanonical(addrs []resolver.Address) bool {
	for i := 1; i < len(addrs); i++ {
		if compareKeys(&addrs[i-1], &addrs[i]) >= 0 {
			return false
		}
	}
	return true
}

// merge reconciles against c.last by a merge walk; ok is false (and nothing
// changed) when addrs is not strictly increasing by identity. Consecutive
// addresses that both match c.last are in order because c.last is, so only
// pairs involving a new address are compared. c.mu is held.
func (c *Checker) merge(addrs []resolver.Address, now time.Time) (added, removed int, ok bool) {
	old := c.last
	gone, fresh, attrs := c.scratchGone[:0], c.scratchNew[:0], false
	prevNew := false
	i, j := 0, 0
	for j < len(addrs) {
		if i < len(old) && sameAddress(&old[i], &addrs[j]) { // the common case: kept as is
			if prevNew && compareKeys(&addrs[j-1], &addrs[j]) >= 0 {
				return 0, 0, false
			}
			prevNew = false
			i++
			j++
			continue
		}
		d := 1
		if i < len(old) {
			d = compareKeys(&old[i], &addrs[j])
		}
		switch {
		case d < 0:
			gone = append(gone, int32(i))
			i++
			continue
		case d == 0: // kept, Weight or Priority changed
			attrs = true
			if prevNew && compareKeys(&addrs[j-1], &addrs[j]) >= 0 {
				return 0, 0, false
			}
			prevNew = false
			i++
		default:
			if j > 0 && compareKeys(&addrs[j-1], &addrs[j]) >= 0 {
				return 0, 0, false
			}
			fresh = append(fresh, int32(j))
			prevNew = true
		}
		j++
	}
	for ; i < len(old); i++ {
		gone = append(gone, int32(i))
	}
	c.scratchGone, c.scratchNew = gone, fresh

	// Returning addresses take their state out of memory before the
	// departing ones go in, so that a full memory never evicts the state of
	// an address that is coming back in this very change (R3), nor another
	// one to make room for it.
	c.mem.lock()
	for _, f := range fresh {
		a := addrs[f]
		k := a.Key()
		t := c.newTarget(k, a, now)
		c.targets[k] = t
		c.scheduleNow(t, now)
		added++
	}
	c.mem.unlock()
	for _, g := range gone {
		k := old[g].Key()
		if t := c.targets[k]; t != nil {
			c.remove(k, t, now)
			removed++
		}
	}
	if attrs {
		for _, a := range addrs {
			if t := c.targets[a.Key()]; t != nil && t.addr != a {
				t.addr = a
			}
		}
	}
	if attrs || added > 0 || removed > 0 {
		c.bump()
		c.last = append(c.last[:0], addrs...)
	}
	return added, removed, true
}

// lookupAll reconciles by looking every address up; c.mu is held.
func (c *Checker) lookupAll(addrs []resolver.Address, now time.Time) (added, removed int) {
	c.stamp++
	changed := false
	unique := 0
	c.mem.lock() // for newTarget
	for _, a := range addrs {
		k := a.Key()
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
	c.mem.unlock()
	if len(c.targets) > unique {
		for k, t := range c.targets {
			if t.seen != c.stamp {
				c.remove(k, t, now)
				removed++
			}
		}
	}
	if changed || added > 0 || removed > 0 {
		c.bump()
	}
	return added, removed
}

// newTarget returns a target for a, with its remembered state (R3), its
// ejection included, or the initial one; c.mu and c.mem's lock are held.
func (c *Checker) newTarget(k resolver.Key, a resolver.Address, now time.Time) *target {
	t := &target{addr: a, index: -1, ejIndex: -1}
	if r, ok := c.mem.takeLocked(c.name, k, now); ok {
		t.state = r.state
		t.state.window = window{} // it counted another interval's traffic
		if t.state.passive.ejected() {
			if !c.mayEject() {
				// The ejection cap is full: the returning target is trusted
				// again, on probation, its counters kept.
				t.state.passive.end(now, c.rules.passive)
			} else {
				c.requeueEjection(t) // an ejection that ended meanwhile ends at the next tick
			}
		}
		return t
	}
	t.state = newState(c.cfg.Initial, now)
	return t
}

// remove stops probing t and moves its state into memory (R2). A probe of t
// in flight finds t gone and changes nothing; until it ends, t is kept in
// departed. c.mu is held.
func (c *Checker) remove(k resolver.Key, t *target, now time.Time) {
	c.dequeue(t)
	c.ejections.remove(t)
	delete(c.targets, k)
	c.dropConn(t) // a probe in flight closes its own when it ends
	if t.inFlight {
		c.departed[k] = t
	}
	c.mem.put(c.name, t.addr, t.state, now)
}
