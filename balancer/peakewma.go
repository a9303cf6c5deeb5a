package balancer

import "math"

// unmeasured is the cost of a target that has requests in flight but has
// not answered one yet: above any measured cost, so that a new target gets
// one request at a time until its first response tells its latency.
const unmeasured = 1 << 62

// cost returns the target's PeakEWMA cost at now: its latency estimate,
// decayed for the time since it was last updated as if that time had
// brought responses of latency 0, times its requests in flight plus one. A
// target never measured costs 0 while nothing is in flight to it, else
// unmeasured plus its requests in flight. It only reads.
func (l *load) cost(now int64, tau float64) float64 {
	n := float64(l.inFlight())
	if l.ewma.Load() == 0 { // never measured (an estimate, once set, is never 0 again)
		if n == 0 {
			return 0
		}
		return unmeasured + n
	}
	return l.estimate(now, tau) * (n + 1)
}

// estimate returns the latency estimate (ns) at now, decayed for the time
// since it was last updated; 0 before the first response. It only reads.
func (l *load) estimate(now int64, tau float64) float64 {
	e := math.Float64frombits(l.ewma.Load())
	if e == 0 {
		return 0
	}
	if dt := now - l.stamp.Load(); dt > 0 {
		e *= decay(float64(dt) / tau)
	}
	return e
}

// observe folds a request's latency rtt (ns) into the estimate at now. A
// latency above the decayed estimate replaces it at once (the peak);
// another moves it toward rtt by the weight 1-exp(-Δt/tau), Δt being the
// time since the last update. A bound is a latency that is only a lower
// bound of the real one (the request failed or was abandoned): it can
// raise the estimate to a new peak but never lowers it. Concurrent
// observations are serialized by a compare-and-swap of the estimate; one
// may then read the stamp of the other, which only shifts its decay by the
// time between the two.
func (l *load) observe(now int64, rtt float64, bound bool, tau float64) {
	rtt = max(rtt, 1) // a measured target never reads as unmeasured
	for {
		old := l.ewma.Load()
		e := math.Float64frombits(old)
		if e != 0 {
			w := decay(float64(max(now-l.stamp.Load(), 0)) / tau)
			switch d := e * w; {
			case rtt > d:
				e = rtt
			case bound:
				return
			default:
				e = d + rtt*(1-w)
			}
		} else {
			e = rtt
		}
		if l.ewma.CompareAndSwap(old, math.Float64bits(e)) {
			l.stamp.Store(now)
			return
		}
	}
}

// decay returns exp(-x) for x ≥ 0. Updates under load are microseconds
// apart against a time constant of seconds, so x is tiny and three terms of
// the series (error below x³/6, under 2e-10 for x < 1e-3) replace the
// exponential.
func decay(x float64) float64 {
	if x < 1e-3 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// cheaper reports whether l costs less than o, at any time: both decay by
// the same factor from now on, so the comparison of
// e_l·(n_l+1)·exp(-(now-t_l)/tau) with e_o·(n_o+1)·exp(-(now-t_o)/tau) is
// that of e_l·(n_l+1)·exp((t_l-t_o)/tau) with e_o·(n_o+1), which needs no
// clock and one exponential. It only reads.
func (l *load) cheaper(o *load, tau float64) bool {
	ln, on := float64(l.inFlight()), float64(o.inFlight())
	le, oe := math.Float64frombits(l.ewma.Load()), math.Float64frombits(o.ewma.Load())
	switch {
	case le == 0 && oe == 0: // both unmeasured: fewer in flight
		return ln < on
	case le == 0: // unmeasured costs 0 idle, more than any measured cost busy
		return ln == 0
	case oe == 0:
		return on != 0
	}
	lc, oc := le*(ln+1), oe*(on+1)
	// Scale the one updated earlier, by a factor ≤ 1 (0 when far apart:
	// still ordered).
	switch dt := l.stamp.Load() - o.stamp.Load(); {
	case dt > 0:
		oc *= decay(float64(dt) / tau)
	case dt < 0:
		lc *= decay(float64(-dt) / tau)
	}
	return lc < oc
}

// peakEWMA draws two distinct candidates and picks the one with the lower
// PeakEWMA cost (the first on a tie). It ignores SRV weights.
type peakEWMA struct {
	loads []*load // one per candidate
	tau   float64 // the time constant in nanoseconds
}

func newPeakEWMA(_ picker, c candidates) picker { return &peakEWMA{loads: c.loads, tau: c.tau} }

func (p *peakEWMA) pick(*shards) int { return p.draw() }

func (p *peakEWMA) draw() int {
	if len(p.loads) == 1 {
		return 0
	}
	i, j := twoIndices(len(p.loads))
	if p.loads[j].cheaper(p.loads[i], p.tau) {
		return j
	}
	return i
}
