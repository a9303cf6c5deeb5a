package health

import (
	"slices"
	"strconv"
	"time"
)

// outcome is one check result, from a probe or a report.
type outcome int

const (
	ignored     outcome = iota // changes nothing (an unlisted HTTP status)
	success                    // a healthy status or a connection that opened
	httpFailure                // an unhealthy status
	tcpFailure                 // refused, reset, closed, TLS failure
	timeout                    // the deadline passed
)

// classifyStatus maps an HTTP status to an outcome with the given lists.
func classifyStatus(code int, healthy, unhealthy []int) outcome {
	switch {
	case slices.Contains(healthy, code):
		return success
	case slices.Contains(unhealthy, code):
		return httpFailure
	}
	return ignored
}

// thresholds are the counter limits of one verdict (active or passive).
type thresholds struct {
	successes, httpFailures, tcpFailures, timeouts int
}

func activeThresholds(c Config) thresholds {
	return thresholds{c.Active.Healthy.Successes, c.Active.Unhealthy.HTTPFailures,
		c.Active.Unhealthy.TCPFailures, c.Active.Unhealthy.Timeouts}
}

func passiveThresholds(c Config) thresholds {
	return thresholds{c.Passive.Healthy.Successes, c.Passive.Unhealthy.HTTPFailures,
		c.Passive.Unhealthy.TCPFailures, c.Passive.Unhealthy.Timeouts}
}

// rules are what the verdicts of a checker's targets are judged by.
type rules struct {
	active, passive thresholds
	ejection        Ejection
	// probed: unhealthy targets are probed actively, so a passing probe
	// ends a passive ejection and the initial unhealthy status.
	probed bool
}

func rulesOf(c Config) rules {
	return rules{
		active:   activeThresholds(c),
		passive:  passiveThresholds(c),
		ejection: c.Passive.Ejection,
		probed:   c.Active.Unhealthy.Interval >= 0,
	}
}

// Counters are one verdict's consecutive outcomes, counted with
// lua-resty-healthcheck's semantics: a success resets the failure counters
// and a failure resets Successes.
type Counters struct {
	Successes    int
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
}

// count records o.
func (c *Counters) count(o outcome) {
	switch o {
	case success:
		*c = Counters{Successes: c.Successes + 1}
	case httpFailure:
		c.Successes = 0
		c.HTTPFailures++
	case tcpFailure:
		c.Successes = 0
		c.TCPFailures++
	case timeout:
		c.Successes = 0
		c.Timeouts++
	}
}

// failing reports whether a failure counter has reached its threshold.
func (c Counters) failing(th thresholds) bool {
	return c.HTTPFailures >= th.httpFailures || c.TCPFailures >= th.tcpFailures || c.Timeouts >= th.timeouts
}

// verdict is one source's judgement of a target: its status and counters.
type verdict struct {
	status Status // Healthy or Unhealthy
	Counters
}

// judge counts o and moves the status when a threshold of th is reached:
// a healthy verdict turns unhealthy when a failure counter reaches its
// threshold, an unhealthy one healthy when the successes reach theirs. It
// reports whether the status moved.
func (v *verdict) judge(o outcome, th thresholds) bool {
	v.count(o)
	switch {
	case v.status == Healthy && v.failing(th):
		v.status = Unhealthy
	case v.status == Unhealthy && o == success && v.Successes >= th.successes:
		v.status = Healthy
	default:
		return false
	}
	return true
}

// active is the verdict of the probes.
type active struct {
	verdict
	// untilFirst: the target started Unhealthy (Config.Initial) and has
	// not passed a check yet; its first success makes it healthy.
	untilFirst bool
}

// passive is the verdict of the traffic. Unhealthy is an ejection, which
// lasts until a deadline; after it the target is on probation.
type passive struct {
	verdict
	since     time.Time // while ejected: when the ejection began
	until     time.Time // while ejected: when the ejection ends
	advised   bool      // the ejection is a Retry-After's: only its deadline ends it
	passed    int       // while ejected: consecutive passing probes started since it began
	probation bool      // the ejection ended; one failure ejects again until Successes reach their threshold
	ejections int       // recent ejections, counting the current one
	// decay is when recent ejections start to decay: the later of the
	// last ejection's end and its deadline, so that an ejection cut short
	// counts as long as one that ran its course.
	decay time.Time
}

func (p *passive) ejected() bool { return p.status == Unhealthy }

// recent returns how many ejections are recent at now: the count drops by
// one for every base that has passed since decay.
func (p *passive) recent(now time.Time, base time.Duration) int {
	if p.ejections == 0 || base <= 0 || !now.After(p.decay) {
		return p.ejections
	}
	return max(p.ejections-int(now.Sub(p.decay)/base), 0)
}

// eject starts an ejection at now, lasting ejectionFor(e, n, jit) for the
// n-th recent ejection. The counters stay: they say what led to it.
func (p *passive) eject(e Ejection, now time.Time, jit float64) time.Duration {
	n := min(p.recent(now, e.Base)+1, 1<<20)
	d := ejectionFor(e, n, jit)
	*p = passive{verdict: verdict{status: Unhealthy, Counters: p.Counters}, since: now, until: now.Add(d),
		ejections: n, decay: p.decay}
	return d
}

// advise ejects for d, as a Retry-After asked, or extends the current
// ejection to end no sooner than that; recent ejections do not count.
func (p *passive) advise(d time.Duration, now time.Time) {
	until := now.Add(d)
	if p.ejected() {
		if until.After(p.until) {
			p.until = until
		}
		p.advised = true
		return
	}
	*p = passive{verdict: verdict{status: Unhealthy, Counters: p.Counters}, since: now, until: until, advised: true,
		ejections: p.ejections, decay: p.decay}
}

// end ends the ejection at now. The target is on probation until its
// passive successes reach th.successes (at once, when the successes counted
// during the ejection already have). The counters stay as they are.
func (p *passive) end(now time.Time, th thresholds) {
	p.decay = now
	if p.until.After(now) && !p.advised {
		p.decay = p.until // cut short: it counts to its deadline
	}
	p.status = Healthy
	p.since, p.until = time.Time{}, time.Time{}
	p.advised = false
	p.passed = 0
	p.probation = p.Successes < th.successes
}

// readmits reports whether passing probes end the ejection early: only the
// first of recent ejections, and only once th.successes probes started
// since it began have passed in a row. A repeated ejection, of a target
// that failed its traffic again after probes had let it back, runs to its
// deadline: its probes have shown that they do not speak for its traffic.
func (p *passive) readmits(th thresholds) bool {
	return p.ejections <= 1 && p.passed >= th.successes
}

// state is everything about a target that survives its removal: it moves
// into memory and back.
type state struct {
	active  active
	passive passive
	reason  string // why the last verdict change happened
	window  window // passive outcomes since the last outlier evaluation
	// lastChange is when status last changed, or when the target was first
	// added; lastProbe when the last active probe started.
	lastChange, lastProbe time.Time
	probe                 ProbeRecord // the last probe whose outcome was applied
	// history holds the last HistorySize changes, oldest first. It is
	// copied on write (see record), so copies of a state may share it.
	history []Transition
}

// record adds tr to the history, forgetting the oldest beyond HistorySize.
// It makes a new slice: the old one may be shared by a copy of the state
// (in memory, or a snapshot).
func (s *state) record(tr Transition) {
	keep := s.history[max(len(s.history)+1-HistorySize, 0):]
	h := make([]Transition, len(keep), len(keep)+1)
	copy(h, keep)
	s.history = append(h, tr)
}

// window counts a target's passive outcomes over one outlier interval.
type window struct{ ok, failed uint32 }

// newState is the state of a brand-new target with initial status s.
func newState(s Status, now time.Time) state {
	st := state{lastChange: now}
	st.active.status = s
	st.active.untilFirst = s == Unhealthy
	st.passive.status = Healthy
	return st
}

// status is the target's status: Unhealthy when either verdict is.
func (s *state) status() Status {
	if s.active.status == Unhealthy || s.passive.status == Unhealthy {
		return Unhealthy
	}
	return Healthy
}

// probeOutcome counts the outcome o (for the reason why) of a probe that
// started at started in the active verdict. When unhealthy targets are
// probed, passing probes may also end a passive ejection that was not
// advised (see passive.readmits). It returns the reason of the verdict
// change, or "" when no verdict changed.
func (s *state) probeOutcome(o outcome, why string, r *rules, started, now time.Time) string {
	if o == ignored {
		return ""
	}
	reason := ""
	switch {
	case s.active.untilFirst && o == success:
		s.active.untilFirst = false
		s.active.count(o)
		s.active.status = Healthy
		reason = why
	case s.active.judge(o, r.active):
		reason = why
	}
	p := &s.passive
	if !r.probed || !p.ejected() || p.advised || started.Before(p.since) {
		return reason
	}
	if o != success {
		p.passed = 0
		return reason
	}
	if p.passed++; p.readmits(r.active) {
		n := p.passed
		p.end(now, r.passive)
		reason = "ejection ended early: " + probes(n) + " passed (" + why + ")"
	}
	return reason
}

// probes says "1 probe" or "n probes".
func probes(n int) string {
	if n == 1 {
		return "1 probe"
	}
	return strconv.Itoa(n) + " probes"
}

// reportOutcome counts a reported outcome o of the traffic (for the reason
// why) in the passive verdict: a failure threshold reached ejects (if
// mayEject), a failure on probation ejects again (if mayEject), and while
// ejected, successes reaching their threshold end the ejection early,
// unless a Retry-After advised it. When unhealthy targets are not probed, a
// success also ends the initial unhealthy status. jit in [0, 1) shortens
// the ejection by up to 10%. It returns the reason of the verdict change,
// or "".
func (s *state) reportOutcome(o outcome, why cause, r *rules, mayEject bool, now time.Time, jit float64) string {
	if o == ignored {
		return ""
	}
	if o == success {
		s.window.ok++
	} else {
		s.window.failed++
	}
	reason := ""
	if o == success && s.active.untilFirst && !r.probed {
		s.active.untilFirst = false
		s.active.status = Healthy
		reason = why.String()
	}
	p := &s.passive
	p.count(o)
	switch {
	case p.ejected():
		if o == success && !p.advised && p.Successes >= r.passive.successes {
			p.end(now, r.passive)
			reason = "ejection ended early: " + why.String()
		}
	case o != success && mayEject && (p.probation || p.failing(r.passive)):
		reason = why.String()
		if p.probation {
			reason += " on probation"
		}
		p.eject(r.ejection, now, jit)
	case o == success && p.probation && p.Successes >= r.passive.successes:
		p.probation = false
	}
	return reason
}

// retryAfter ejects for d (capped at the ejection's Max), as a response
// with Retry-After asked. It returns the reason.
func (s *state) retryAfter(code int, d time.Duration, r *rules, now time.Time) string {
	s.window.failed++
	s.passive.count(httpFailure)
	d = min(d, r.ejection.Max)
	s.passive.advise(d, now)
	return statusReason(code) + " with Retry-After " + d.String()
}

// expire ends an ejection whose deadline has passed at now; it returns the
// reason, or "" when the target is not ejected or its deadline is later.
func (s *state) expire(now time.Time, r *rules) string {
	if !s.passive.ejected() || now.Before(s.passive.until) {
		return ""
	}
	s.passive.end(now, r.passive)
	return "ejection over"
}

// reevaluate applies thresholds that changed from old to cur to the
// current counters (R5): a limit that was lowered and is now reached moves
// the verdict, as if the last outcome had been judged with the new limit.
// Limits that did not change move nothing.
func (s *state) reevaluate(old, cur *rules, mayEject bool, now time.Time, jit float64) string {
	reached := func(n, o, c int) bool { return c < o && n >= c }
	lowered := func(v Counters, o, c thresholds) bool {
		return reached(v.HTTPFailures, o.httpFailures, c.httpFailures) ||
			reached(v.TCPFailures, o.tcpFailures, c.tcpFailures) ||
			reached(v.Timeouts, o.timeouts, c.timeouts)
	}
	reason := ""
	a := &s.active
	switch a.status {
	case Healthy:
		if lowered(a.Counters, old.active, cur.active) {
			a.status, reason = Unhealthy, "failure threshold lowered"
		}
	case Unhealthy:
		if !a.untilFirst && reached(a.Successes, old.active.successes, cur.active.successes) {
			a.status, reason = Healthy, "success threshold lowered"
		}
	}
	p := &s.passive
	switch {
	case !p.ejected() && mayEject && lowered(p.Counters, old.passive, cur.passive):
		p.eject(cur.ejection, now, jit)
		reason = "passive failure threshold lowered"
	case p.ejected() && !p.advised && reached(p.Successes, old.passive.successes, cur.passive.successes):
		p.end(now, cur.passive)
		reason = "passive success threshold lowered"
	}
	return reason
}
