package health

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// spec is what one probe needs, copied under c.mu so the probe itself
// touches no shared state.
type spec struct {
	typ        ProbeType
	prober     Prober // nil: typ's probe
	path       string
	host       string
	port       uint16
	timeout    time.Duration
	headers    http.Header // shared with c.cfg, never modified
	expectBody string
	healthy    []int // shared with c.cfg, never modified
	unhealthy  []int
}

func (c *Checker) spec() spec {
	a := &c.cfg.Active
	return spec{
		typ: a.Type, prober: a.Prober, path: a.Path, host: a.Host, port: a.Port, timeout: a.Timeout,
		headers: a.Headers, expectBody: a.ExpectBody,
		healthy: a.Healthy.HTTPStatuses, unhealthy: a.Unhealthy.HTTPStatuses,
	}
}

// probed is the outcome of one probe.
type probed struct {
	o      outcome
	code   int // the HTTP status; 0 for other probes and when no response arrived
	reason string
	conn   *probeConn // HTTP(S): the connection to keep for the target's next probe
}

// probe runs one probe. It starts only if its target is still a target with
// the probe settings it was scheduled under (R2); its outcome is applied only
// if that is still so when it ends.
func (c *Checker) probe(ctx context.Context, j job) {
	t := j.t
	c.mu.Lock()
	now := time.Now()
	if c.targets[t.addr.Key()] != t || t.epoch != j.epoch || !c.probed(t) {
		// Gone, new settings, or no longer probed (SetProbeFilter, an
		// interval below 0) since it was due.
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
	kept := c.takeConn(t) // the probe owns it while it runs
	c.mu.Unlock()

	res := c.runProbe(ctx, sp, addr, kept)

	c.mu.Lock()
	now = time.Now()
	if ctx.Err() != nil || c.targets[t.addr.Key()] != t || t.epoch != j.epoch {
		closeConn(res.conn) // the target left, the settings changed or Run ends
		c.stats.ProbesDropped++
		c.finish(t, now)
		if c.targets[t.addr.Key()] == t && t.epoch != j.epoch {
			c.scheduleNow(t, now) // probe again with the new settings
		}
		c.mu.Unlock()
		return
	}
	c.stats.ProbesCompleted++
	c.keepConn(t, res.conn)
	c.release(t)
	t.state.probe = ProbeRecord{Start: started, Duration: now.Sub(started), Outcome: ProbeOutcome(res.o),
		StatusCode: res.code, Reason: res.reason}
	c.applyProbe(t, res.o, res.reason, started, now)
	if t.index < 0 && !t.inFlight {
		c.scheduleAfter(t, t.state.lastProbe, now)
	}
	c.unlockAndFlush()
	c.publishProbe(addr, sp.typ, res, now.Sub(started))
}

// runProbe performs the probe described by sp against addr, on kept, the
// connection of the target's previous HTTP(S) probe, when it can.
func (c *Checker) runProbe(ctx context.Context, sp spec, addr resolver.Address, kept *probeConn) probed {
	ctx, cancel := context.WithTimeout(ctx, sp.timeout)
	defer cancel()
	if sp.port != 0 {
		addr.Port = sp.port
	}
	if sp.prober != nil || sp.typ == TCP {
		closeConn(kept)
	}
	switch {
	case sp.prober != nil:
		po, why := sp.prober.Probe(ctx, addr)
		o := outcome(po)
		if po < ProbeIgnored || po > ProbeTimeout {
			o = tcpFailure
		}
		return probed{o: o, reason: why}
	case sp.typ == TCP:
		o, why := probeTCP(ctx, addr, sp)
		return probed{o: o, reason: why}
	}
	o, code, why, conn := c.http.probe(ctx, sp, addr, kept)
	return probed{o: o, code: code, reason: why, conn: conn}
}

// takeConn takes t's kept connection, if any; c.mu is held.
func (c *Checker) takeConn(t *target) *probeConn {
	pc := t.conn
	if pc != nil {
		t.conn = nil
		c.idleConns--
	}
	return pc
}

// keepConn keeps pc for t's next probe, unless the checker already keeps
// WithMaxIdleConns connections: then it closes pc. c.mu is held.
func (c *Checker) keepConn(t *target, pc *probeConn) {
	if pc == nil {
		return
	}
	if c.idleConns >= c.maxIdle || t.conn != nil {
		closeConn(pc)
		return
	}
	t.conn = pc
	c.idleConns++
}

// dropConn closes t's kept connection, if any; c.mu is held.
func (c *Checker) dropConn(t *target) { closeConn(c.takeConn(t)) }
