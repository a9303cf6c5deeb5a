package health

import (
	"fmt"
	"testing"
	"time"
)

// refVerdict is one verdict of the reference model.
type refVerdict struct {
	bad                 bool // Unhealthy
	ok, http, tcp, tout int  // consecutive outcomes
}

func (v *refVerdict) add(o outcome) {
	switch o {
	case success:
		*v = refVerdict{bad: v.bad, ok: v.ok + 1}
	case httpFailure:
		v.ok, v.http = 0, v.http+1
	case tcpFailure:
		v.ok, v.tcp = 0, v.tcp+1
	case timeout:
		v.ok, v.tout = 0, v.tout+1
	}
}

func (v *refVerdict) over(th thresholds) bool {
	return v.http >= th.httpFailures || v.tcp >= th.tcpFailures || v.tout >= th.timeouts
}

// refTarget is the reference model of a target's verdicts, written from
// the documented rules (docs/semantics.md, "Verdicts") rather than from
// state.go.
type refTarget struct {
	active, passive refVerdict
	first           bool      // unhealthy until the first success
	until           time.Time // ejected until; zero when not ejected
	since           time.Time // when the ejection began
	advised         bool
	passed          int // passing probes in a row started since the ejection began
	probation       bool
	count           int       // recent ejections
	decay           time.Time // recent ejections decay from here
}

func (m *refTarget) status() Status {
	if m.active.bad || !m.until.IsZero() {
		return Unhealthy
	}
	return Healthy
}

func (m *refTarget) eject(r *rules, now time.Time, jit float64) {
	recent := m.count
	if recent > 0 && now.After(m.decay) {
		recent -= int(now.Sub(m.decay) / r.ejection.Base)
		recent = max(recent, 0)
	}
	m.count = recent + 1
	d := min(r.ejection.Base*time.Duration(m.count), r.ejection.Max)
	d -= time.Duration(jit * 0.1 * float64(d))
	m.until, m.since, m.advised, m.probation, m.passed = now.Add(d), now, false, false, 0
}

// end ends an ejection; one cut short counts, for the decay of recent
// ejections, as if it had lasted to its deadline.
func (m *refTarget) end(r *rules, now time.Time) {
	m.decay = now
	if m.until.After(now) && !m.advised {
		m.decay = m.until
	}
	m.until, m.since, m.advised, m.passed = time.Time{}, time.Time{}, false, 0
	m.probation = m.passive.ok < r.passive.successes
}

func (m *refTarget) probe(o outcome, r *rules, started, now time.Time) {
	if o == ignored {
		return
	}
	if m.first && o == success {
		m.first = false
		m.active.add(o)
		m.active.bad = false
	} else {
		m.active.add(o)
		if !m.active.bad && m.active.over(r.active) {
			m.active.bad = true
		} else if m.active.bad && o == success && m.active.ok >= r.active.successes {
			m.active.bad = false
		}
	}
	// Probes started during an ejection may end it: only the first of
	// recent ejections, after the active success threshold of them passed
	// in a row.
	if r.probed && !m.until.IsZero() && !m.advised && !started.Before(m.since) {
		if o != success {
			m.passed = 0
			return
		}
		m.passed++
		if m.count <= 1 && m.passed >= r.active.successes {
			m.end(r, now)
		}
	}
}

func (m *refTarget) report(o outcome, r *rules, may bool, now time.Time, jit float64) {
	if o == ignored {
		return
	}
	if o == success && m.first && !r.probed {
		m.first, m.active.bad = false, false
	}
	m.passive.add(o)
	ejected := !m.until.IsZero()
	switch {
	case ejected && o == success && !m.advised && m.passive.ok >= r.passive.successes:
		m.end(r, now)
	case ejected:
	case o != success && may && (m.probation || m.passive.over(r.passive)):
		m.eject(r, now, jit)
	case o == success && m.probation && m.passive.ok >= r.passive.successes:
		m.probation = false
	}
}

func (m *refTarget) tick(r *rules, now time.Time) {
	if !m.until.IsZero() && !now.Before(m.until) {
		m.end(r, now)
	}
}

func (m *refTarget) retryAfter(d time.Duration, r *rules, now time.Time) {
	m.passive.add(httpFailure)
	until := now.Add(min(d, r.ejection.Max))
	if m.until.IsZero() {
		m.until, m.since, m.probation, m.passed = until, now, false, 0
	} else if until.After(m.until) {
		m.until = until
	}
	m.advised = true
}

// FuzzVerdicts drives one target's state with random streams of probe
// outcomes, reported outcomes, Retry-After ejections and the passing of
// time, and compares it after every step with the reference model: each
// verdict with its own counters, Status Unhealthy when either is, probes
// never moving the passive counters nor reports the active ones, ejections
// lasting Base × recent ejections capped at Max and ending at their
// deadline, early at the passive successes threshold or, for the first of
// recent ejections only, when enough probes started during it passed, then
// probation; recent ejections decaying from the later of an ejection's end
// and its deadline.
func FuzzVerdicts(f *testing.F) {
	f.Add([]byte{1, 2, 1, 2, 2, 50, 3, 1, 2, 0, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{0, 2, 0, 2, 0, 2, 1, 1, 1, 1, 4, 30, 2, 200, 3, 0, 1})
	f.Add([]byte{5, 1, 1, 3, 1, 3, 2, 255, 3, 1, 3, 2, 40, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzBytes{b: data}
		flags := in.next()
		r := rules{
			active:   thresholds{1 + int(in.next()%3), 1 + int(in.next()%3), 1 + int(in.next()%3), 1 + int(in.next()%3)},
			passive:  thresholds{1 + int(in.next()%3), 1 + int(in.next()%3), 1 + int(in.next()%3), 1 + int(in.next()%3)},
			ejection: Ejection{Base: time.Duration(1+in.next()%5) * time.Second},
			probed:   flags&1 != 0,
		}
		r.ejection.Max = r.ejection.Base * time.Duration(1+in.next()%4)
		now := time.Unix(1_000_000, 0)
		initial := Healthy
		if flags&2 != 0 {
			initial = Unhealthy
		}
		s := newState(initial, now)
		m := &refTarget{first: initial == Unhealthy, active: refVerdict{bad: initial == Unhealthy}}
		outcomes := []outcome{ignored, success, success, httpFailure, tcpFailure, timeout}
		for step := 0; step < 300 && !in.empty(); step++ {
			op, arg := in.next(), in.next()
			o := outcomes[int(arg)%len(outcomes)]
			before := s.passive.Counters
			beforeActive := s.active.Counters
			var what string
			switch op % 5 {
			case 0:
				started := now.Add(-time.Duration(op/5%4) * 100 * time.Millisecond)
				what = fmt.Sprintf("probe %v started %v", o, started)
				s.probeOutcome(o, "p", &r, started, now)
				m.probe(o, &r, started, now)
				if s.passive.Counters != before {
					t.Fatalf("step %d %s: a probe moved the passive counters %+v -> %+v", step, what, before, s.passive.Counters)
				}
			case 1:
				may := arg&0x80 == 0
				jit := float64(in.next()) / 256
				what = fmt.Sprintf("report %v may %v jit %.2f", o, may, jit)
				s.reportOutcome(o, cause{text: "r"}, &r, may, now, jit)
				m.report(o, &r, may, now, jit)
				if s.active.Counters != beforeActive {
					t.Fatalf("step %d %s: a report moved the active counters", step, what)
				}
			case 2:
				now = now.Add(time.Duration(arg) * 100 * time.Millisecond)
				what = "advance to " + now.String()
				fallthrough
			case 3:
				what += " tick"
				s.expire(now, &r)
				m.tick(&r, now)
			case 4:
				d := time.Duration(arg) * 200 * time.Millisecond
				what = fmt.Sprintf("retry-after %v", d)
				if d > 0 {
					s.retryAfter(503, d, &r, now)
					m.retryAfter(d, &r, now)
				}
			}
			var sUntil time.Duration
			if !s.passive.until.IsZero() {
				sUntil = s.passive.until.Sub(time.Unix(0, 0))
			}
			got := fmt.Sprintf("%v a{%v %+v first %v} p{%v %+v until %v probation %v advised %v n %d passed %d}",
				s.status(), s.active.status, s.active.Counters, s.active.untilFirst,
				s.passive.status, s.passive.Counters, sUntil, s.passive.probation, s.passive.advised, s.passive.ejections,
				s.passive.passed)
			ms := Healthy
			if m.active.bad {
				ms = Unhealthy
			}
			ps := Healthy
			if !m.until.IsZero() {
				ps = Unhealthy
			}
			var until time.Duration
			if !m.until.IsZero() {
				until = m.until.Sub(time.Unix(0, 0))
			}
			want := fmt.Sprintf("%v a{%v %+v first %v} p{%v %+v until %v probation %v advised %v n %d passed %d}",
				m.status(), ms, Counters{m.active.ok, m.active.http, m.active.tcp, m.active.tout}, m.first,
				ps, Counters{m.passive.ok, m.passive.http, m.passive.tcp, m.passive.tout}, until, m.probation, m.advised, m.count,
				m.passed)
			if got != want {
				t.Fatalf("step %d %s:\n got  %s\n want %s", step, what, got, want)
			}
			if s.passive.ejected() && s.passive.until.Sub(now) > r.ejection.Max {
				t.Fatalf("step %d: ejected for %v, beyond Max %v", step, s.passive.until.Sub(now), r.ejection.Max)
			}
		}
	})
}
