package health

import (
	"time"
)

// verdicts is what a verdict change may move: the status and each verdict.
type verdicts struct {
	status, active, passive Status
	until                   time.Time // the ejection's end
}

func (s *state) verdicts() verdicts {
	return verdicts{status: s.status(), active: s.active.status, passive: s.passive.status, until: s.passive.until}
}

// applyProbe counts the outcome o of t's probe that started at started,
// for the reason why, and settles what it changed; c.mu is held.
func (c *Checker) applyProbe(t *target, o outcome, why string, started, now time.Time) {
	before := t.state.verdicts()
	c.settle(t, before, t.state.probeOutcome(o, why, &c.rules, started, now), now)
}

// mayEject reports whether a passive verdict may eject one more target:
// always, unless outlier detection caps the share of ejected targets
// (Outlier.MaxEjectionPercent; one may always be ejected, none with Zero);
// c.mu is held.
func (c *Checker) mayEject() bool {
	switch pct := c.cfg.Passive.Outlier.MaxEjectionPercent; pct {
	case 0: // outlier detection is off
		return true
	case Zero:
		return false
	default:
		return c.ejections.Len() < max(1, len(c.targets)*pct/100)
	}
}

// settle makes what a verdict change of t did since before visible: the
// status, the ejection queue, the generation, the probe schedule and a
// StatusChange for each change of the status or of a verdict; c.mu is held.
func (c *Checker) settle(t *target, before verdicts, reason string, now time.Time) {
	s := &t.state
	after := s.verdicts()
	if after == before {
		return
	}
	if after.passive == Unhealthy && before.passive != Unhealthy {
		c.stats.Ejections++
	}
	c.requeueEjection(t)
	if after.status == before.status && after.active == before.active && after.passive == before.passive {
		return // only the ejection's end moved
	}
	if reason != "" {
		s.reason = reason
	}
	e := StatusChange{Name: c.name, Address: t.addr, From: before.status, To: after.status,
		Active: after.active, Passive: after.passive, Reason: s.reason}
	if after.passive == Unhealthy {
		e.Until = s.passive.until
	}
	c.outbox = append(c.outbox, e)
	s.record(Transition{At: now, From: e.From, To: e.To, Active: e.Active, Passive: e.Passive, Reason: e.Reason})
	if after.status != before.status {
		s.lastChange = now
		c.stats.Transitions++
		c.bump()
		if !t.inFlight {
			c.rescheduleFromLast(t, now)
		}
	}
}

// requeueEjection puts t in the ejection queue at its ejection's end, or
// takes it out when it is not ejected; c.mu is held.
func (c *Checker) requeueEjection(t *target) {
	if !t.state.passive.ejected() {
		c.ejections.remove(t)
		return
	}
	c.ejections.put(t)
	if c.ejections.first(t) {
		c.poke()
	}
}

// expireEjections ends the ejections due at now and returns when the next
// one is due (zero if none is); c.mu is held.
func (c *Checker) expireEjections(now time.Time) time.Time {
	for t := c.ejections.head(); t != nil; t = c.ejections.head() {
		if t.state.passive.until.After(now) {
			return t.state.passive.until
		}
		before := t.state.verdicts()
		c.settle(t, before, t.state.expire(now, &c.rules), now)
	}
	return time.Time{}
}

// logChange logs a StatusChange with why it happened.
func (c *Checker) logChange(e StatusChange) {
	attrs := []any{"name", e.Name, "address", e.Address.String(), "from", e.From.String(), "to", e.To.String(),
		"active", e.Active.String(), "passive", e.Passive.String(), "reason", e.Reason}
	if !e.Until.IsZero() {
		attrs = append(attrs, "ejected_for", time.Until(e.Until).Round(time.Millisecond).String())
	}
	msg := "health: status changed"
	if e.From == e.To {
		msg = "health: verdict changed"
	}
	c.log.Info(msg, attrs...)
}
