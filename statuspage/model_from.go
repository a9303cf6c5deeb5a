package statuspage

// This file is the one place where the library's types become the page's
// model: everything the page shows of an upstream is read here.
//

import (
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// troubled reports, cheaply, whether u has an unhealthy address or a
// failing DNS, so that a page capped in upstreams shows it first.
func troubled(u *vigil.Upstream) bool {
	c := u.Checker()
	return len(c.Healthy()) < c.Stats().Targets || u.Source().State().Failures > 0
}

// upstreamOf maps u with at most cfg.MaxAddresses of its live addresses,
// the unhealthy ones first.
func (h *Handler) upstreamOf(u *vigil.Upstream) Upstream {
	c := u.Checker()
	st := c.Stats()
	up := Upstream{
		Name:    u.String(),
		DNSName: u.Name(),
		Policy:  u.Balancer().Policy().String(),
		Ejected: st.Ejected,
		Checker: Checker{
			Version:         st.Version,
			ChangesApplied:  st.ChangesApplied,
			ChangesIgnored:  st.ChangesIgnored,
			ProbesStarted:   st.ProbesStarted,
			ProbesCompleted: st.ProbesCompleted,
			ProbesDropped:   st.ProbesDropped,
			ProbesInFlight:  st.InFlight,
			Transitions:     st.Transitions,
			Ejections:       st.Ejections,
		},
		DNS: dnsOf(u.Source().State(), h.cfg.MaxAddresses),
	}
	ts := c.Targets()
	up.Targets = len(ts)
	for _, t := range ts {
		if t.Status == health.Unhealthy {
			up.Unhealthy++
		} else {
			up.Healthy++
		}
	}
	loads := make(map[resolver.Key]balancer.Load)
	var picks int64
	for _, l := range u.Balancer().Loads() {
		loads[l.Address.Key()] = l
		picks += l.Picks
	}
	ts = capTargets(ts, h.cfg.MaxAddresses)
	up.AddressesOmitted = up.Targets - len(ts)
	up.Addresses = make([]Address, 0, len(ts))
	for _, t := range ts {
		a := addressOf(t, h.cfg.MaxChanges)
		if l, ok := loads[t.Address.Key()]; ok {
			inFlight, n := l.InFlight, l.Picks
			a.InFlight, a.Picks = &inFlight, &n
			if picks > 0 {
				share := float64(n) / float64(picks)
				a.Share = &share
			}
		}
		if h.roles != nil {
			if r, ok := h.roles(up.DNSName, t.Address); ok {
				a.Fleet = roleOf(r)
			}
		}
		up.Addresses = append(up.Addresses, a)
	}
	return up
}

// rememberedOf returns what the checker of u remembers of departed
// addresses (at most limit of them, the unhealthy ones first) and how many
// it remembers in all.
func rememberedOf(u *vigil.Upstream, limit, maxChanges int) (shown []Address, total int) {
	ts := u.Checker().RememberedTargets()
	shown = make([]Address, 0, min(len(ts), limit))
	for _, t := range capTargets(ts, limit) {
		shown = append(shown, addressOf(t, maxChanges))
	}
	return shown, len(ts)
}

// capTargets returns at most n of ts, the unhealthy ones first, in their
// order.
func capTargets(ts []health.Target, n int) []health.Target {
	if len(ts) <= n {
		return ts
	}
	keep := make([]bool, len(ts))
	left := n
	for _, unhealthyOnly := range []bool{true, false} {
		for i, t := range ts {
			if left > 0 && !keep[i] && (!unhealthyOnly || t.Status == health.Unhealthy) {
				keep[i] = true
				left--
			}
		}
	}
	out := make([]health.Target, 0, n)
	for i, t := range ts {
		if keep[i] {
			out = append(out, t)
		}
	}
	return out
}

// addressOf maps one target, with at most maxChanges of its last changes.
func addressOf(t health.Target, maxChanges int) Address {
	a := Address{
		Address:  t.Address.HostPort(),
		Hostname: t.Address.Hostname,
		Weight:   t.Address.Weight,
		Priority: t.Address.Priority,
		Status:   t.Status.String(),
		Reason:   text(t.Reason),
		Active: Verdict{
			Status:       t.Active.String(),
			Successes:    t.Successes,
			HTTPFailures: t.HTTPFailures,
			TCPFailures:  t.TCPFailures,
			Timeouts:     t.Timeouts,
		},
		Passive: Verdict{
			Status:       t.Passive.String(),
			Successes:    t.PassiveCounts.Successes,
			HTTPFailures: t.PassiveCounts.HTTPFailures,
			TCPFailures:  t.PassiveCounts.TCPFailures,
			Timeouts:     t.PassiveCounts.Timeouts,
		},
		Ejection: Ejection{
			Ejected:   t.Passive == health.Unhealthy,
			Ejections: t.Ejections,
			Probation: t.Probation,
		},
		LastChange: timeOf(t.LastChange),
		Changes:    []Change{},
	}
	if a.Ejection.Ejected {
		a.Ejection.Until = timeOf(t.EjectedUntil)
	}
	switch p := t.Probe; {
	case !p.Start.IsZero() && p.Reason != "":
		d := ms(p.Duration)
		a.LastProbe = &Probe{At: p.Start.UTC(), DurationMs: &d, Outcome: p.Outcome.String(), Reason: text(p.Reason)}
	case !t.LastProbe.IsZero(): // under way
		a.LastProbe = &Probe{At: t.LastProbe.UTC()}
	}
	for _, tr := range t.History[max(len(t.History)-maxChanges, 0):] {
		a.Changes = append(a.Changes, Change{At: tr.At.UTC(), From: tr.From.String(), To: tr.To.String(), Reason: text(tr.Reason)})
	}
	return a
}

// dnsOf maps a source's state, its answer's addresses capped at limit.
func dnsOf(st resolver.State, limit int) DNS {
	d := DNS{
		Name:       st.Name,
		Types:      nonNil(st.Types),
		Running:    st.Running,
		Version:    st.Version,
		Addresses:  len(st.Addresses),
		Candidates: nonNil(st.Candidates),
		Following:  st.Following,
		Failures:   st.Failures,
		ErrorAt:    timeOf(st.ErrAt),
		Next:       timeOf(st.Next),
	}
	if st.Err != nil {
		d.Error = text(st.Err.Error())
	}
	if a := st.Answer; !a.At.IsZero() {
		shown := a.Addresses[:min(len(a.Addresses), limit)]
		d.Answer = &Answer{
			At:               a.At.UTC(),
			TTLMs:            ms(a.TTL),
			TTLLeftMs:        ms(a.TTLLeft),
			Addresses:        make([]string, 0, len(shown)),
			AddressesOmitted: len(a.Addresses) - len(shown),
		}
		for _, ad := range shown {
			d.Answer.Addresses = append(d.Answer.Addresses, ad.HostPort())
		}
	}
	return d
}

// roleOf maps a fleet role.
func roleOf(r Role) *FleetRole {
	return &FleetRole{
		Kind:      string(r.Kind),
		Rank:      r.Rank,
		Member:    text(r.Member),
		Reason:    text(r.Reason),
		AgeMs:     ms(r.Age),
		Disagrees: r.Disagrees,
	}
}

// timeOf returns t in UTC, or nil when it is zero.
func timeOf(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// nonNil returns s, or an empty slice for nil: lists are never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
