package health

import (
	"context"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// spec is what one probe needs, copied under c.mu so the probe itself
// touches no shared state.
type spec struct {
	typ       ProbeType
	path      string
	host      string
	port      uint16
	timeout   time.Duration
	healthy   []int // shared with c.cfg, never modified
	unhealthy []int
}

func (c *Checker) spec() spec {
	a := &c.cfg.Active
	return spec{a.Type, a.Path, a.Host, a.Port, a.Timeout, a.Healthy.HTTPStatuses, a.Unhealthy.HTTPStatuses}
}

// work runs probes handed out by the scheduler until ctx ends.
func (c *Checker) work(ctx context.Context, jobs <-chan job) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			c.probe(ctx, j)
		}
	}
}

// probe runs one probe. It starts only if its target is still a target with
// the probe settings it was scheduled under (R2); its outcome is applied only
// if that is still so when it ends.
func (c *Checker) probe(ctx context.Context, j job) {
	t := j.t
	c.mu.Lock()
	now := time.Now()
	if c.targets[t.addr.Key()] != t || t.epoch != j.epoch {
		c.stats.ProbesDropped++
		c.finish(t, now)
		c.mu.Unlock()
		return
	}
	t.state.lastProbe = now
	started := now
	c.stats.ProbesStarted++
	if c.onProbeStart != nil {
		c.onProbeStart(t)
	}
	sp, addr := c.spec(), t.addr
	c.mu.Unlock()

	o, code := c.runProbe(ctx, sp, addr)

	c.mu.Lock()
	now = time.Now()
	if ctx.Err() != nil || c.targets[t.addr.Key()] != t || t.epoch != j.epoch {
		c.stats.ProbesDropped++
		c.finish(t, now)
		if c.targets[t.addr.Key()] == t && t.epoch != j.epoch {
			c.scheduleNow(t, now) // probe again with the new settings
		}
		c.mu.Unlock()
		return
	}
	c.stats.ProbesCompleted++
	t.inFlight = false
	c.stats.InFlight--
	c.record(t, o, c.active, now)
	if t.index < 0 && !t.inFlight {
		c.scheduleAfter(t, t.state.lastProbe, now)
	}
	c.unlockAndFlush()
	c.publishProbe(addr, sp.typ, o, code, now.Sub(started))
}

// run performs the probe described by sp against addr.
func (c *Checker) run(ctx context.Context, sp spec, addr resolver.Address) outcome {
	o, _ := c.runProbe(ctx, sp, addr)
	return o
}

// runProbe performs the probe described by sp against addr and returns its
// outcome and the HTTP status (0 for TCP, or when no response arrived).
func (c *Checker) runProbe(ctx context.Context, sp spec, addr resolver.Address) (outcome, int) {
	ctx, cancel := context.WithTimeout(ctx, sp.timeout)
	defer cancel()
	if sp.port != 0 {
		addr.Port = sp.port
	}
	if sp.typ == TCP {
		return probeTCP(ctx, addr), 0
	}
	return c.http.probe(ctx, sp, addr)
}

// record counts o for t with thresholds th and applies a resulting status
// change; c.mu is held.
func (c *Checker) record(t *target, o outcome, th thresholds, now time.Time) {
	if s := t.state.record(o, th); s != t.state.status {
		c.setStatus(t, s, now)
	}
}
