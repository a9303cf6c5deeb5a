package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// summary is what one world's story came to, counted from what the backends
// received (their path counts) and when the generator sent each request.
type summary struct {
	World string `json:"world"`
	// Requests the generator sent, and how many reached a backend.
	Sent    int64 `json:"requests_sent"`
	Reached int   `json:"requests_reached"`
	// Requests a failing backend received and answered 500, sent after the
	// checker had first been seen to mark that backend unhealthy in that
	// failure.
	ToUnhealthy int `json:"requests_to_unhealthy_after_detection"`
	// Targets seen turning from unhealthy to healthy while their backend
	// still answered 500.
	Resets int `json:"status_resets"`
	// Probes that reached an address, and requests sent to one, later than
	// the removal grace after DNS stopped answering with it (whether or not
	// the checker applied the removal), and before it was put back in DNS.
	StaleProbes   int `json:"probes_after_removal"`
	StaleRequests int `json:"requests_after_removal"`
	// When the failing backend was first marked unhealthy, after it began
	// failing; -1 when it never was.
	DetectedMs int64 `json:"detected_after_ms"`
	// Requests a backend whose health check alone failed (its traffic
	// still succeeding) received, sent after the checker had first been
	// seen to mark it unhealthy in that failure or, when it never was,
	// later than two probe intervals after the failure began.
	ToCheckFailing int `json:"requests_to_check_failing_after_detection"`
	// Whether that backend was ever marked unhealthy while its health check
	// failed, and when after the failure began; -1 when it never was.
	CheckDetected   bool  `json:"check_failure_detected"`
	CheckDetectedMs int64 `json:"check_failure_detected_after_ms"`
	// Steps of the story played, and how many showed what they should.
	Steps   int `json:"steps"`
	StepsOK int `json:"steps_ok"`
	// Whether every check held; Failed says which did not.
	Passed bool     `json:"passed"`
	Failed []string `json:"failed,omitempty"`

	steps []stepResult
}

// definitions explains the summary's counts.
func definitions(sc scale) []string {
	return []string{
		"requests sent: GETs " + trafficPath + "<n> the generator issued; reached: those the backends counted.",
		"to unhealthy: requests a backend received and answered 500, sent after the checker had first marked it unhealthy in that failure.",
		"resets: an unhealthy target seen turning healthy while its backend still answered 500.",
		"detected after: from the backend's first 500 until the checker was first seen to hold it unhealthy. Both worlds count the outcomes of their own traffic (passive checks) as well as their probes: vigil keeps one verdict per source, unhealthy when either is (balancer.Transport reports the traffic's); the baseline counts both on one set of counters, as lua-resty-healthcheck does, so that a traffic success resets the failures its probes counted.",
		fmt.Sprintf("to check-failing: requests received by a backend whose health check (%s) answered 500 while its traffic (%s<n>) answered 200, sent after the checker had first marked it unhealthy or, if it never did (never detected), more than %s (two probe intervals: two failed probes in a row) after its health check began failing.",
			probePath, trafficPath, ms(sc.checkAllowance)),
		fmt.Sprintf("to removed addresses: %s requests an address received, and %s<n> requests sent to it, more than %s (one probe timeout, for a probe already in flight, plus %s for the Change to reach the checker) after DNS stopped answering with it, until it was put back in DNS.",
			probePath, trafficPath, ms(sc.removalGrace), ms(deliverySlack)),
	}
}

// summarize counts what happened to w.
func summarize(w *world) *summary {
	o := w.obs
	s := &summary{World: w.label, Sent: w.gen.issued.Load(), DetectedMs: -1, CheckDetectedMs: -1, steps: w.steps}
	o.mu.Lock()
	failures := append([]*failure(nil), o.failures...)
	s.Resets = o.resets
	for _, n := range o.stale {
		s.StaleProbes += n
	}
	o.mu.Unlock()
	for _, f := range failures {
		switch {
		case f.checkOnly:
			if !f.detected.IsZero() && !s.CheckDetected {
				s.CheckDetected, s.CheckDetectedMs = true, f.detected.Sub(f.start).Milliseconds()
			}
			s.ToCheckFailing += w.requestsTo(f.ip, f.countsFrom(o.allow), f.end)
		case !f.detected.IsZero() && s.DetectedMs < 0:
			s.DetectedMs = f.detected.Sub(f.start).Milliseconds()
		}
	}
	for _, b := range w.backends {
		for p, count := range b.Paths() {
			num, ok := strings.CutPrefix(p, trafficPath)
			if !ok {
				continue
			}
			s.Reached += count
			n, err := strconv.Atoi(num)
			if err != nil {
				continue
			}
			sent, code := w.gen.request(n)
			if o.staleRequest(b.IP, sent) {
				s.StaleRequests += count
			}
			for _, f := range failures {
				if f.ip == b.IP && !f.checkOnly && code == 500 && hitAfterDetection(f, sent) {
					s.ToUnhealthy += count
				}
			}
		}
	}
	s.Steps = len(s.steps)
	for _, st := range s.steps {
		if st.ok {
			s.StepsOK++
		}
	}
	s.Passed = true
	for _, c := range checks(s) {
		if !c.ok {
			s.Passed = false
			s.Failed = append(s.Failed, c.text)
		}
	}
	return s
}

// requestsTo returns how many traffic requests the backend at ip received
// that were sent from from on, and before to unless to is zero.
func (w *world) requestsTo(ip netip.Addr, from, to time.Time) int {
	n := 0
	for _, b := range w.backends {
		if b.IP != ip {
			continue
		}
		for p, count := range b.Paths() {
			seq, ok := strings.CutPrefix(p, trafficPath)
			if !ok {
				continue
			}
			i, err := strconv.Atoi(seq)
			if err != nil {
				continue
			}
			if sent, _ := w.gen.request(i); !sent.IsZero() && !sent.Before(from) && (to.IsZero() || sent.Before(to)) {
				n += count
			}
		}
	}
	return n
}

// hitAfterDetection reports whether a request sent at t falls in f after
// its detection.
func hitAfterDetection(f *failure, t time.Time) bool {
	return !f.detected.IsZero() && !t.Before(f.detected) && (f.end.IsZero() || t.Before(f.end))
}

// check is one invariant the default run demonstrates.
type check struct {
	ok   bool
	text string
}

// checks returns vigil's invariants as shown by s, then what each step of
// the story was meant to show.
func checks(s *summary) []check {
	cs := []check{
		{s.Sent > 0 && s.Reached > 0, fmt.Sprintf("traffic flowed: %d requests sent, %d reached a backend", s.Sent, s.Reached)},
		{s.DetectedMs >= 0, fmt.Sprintf("the failing backend was detected (%dms after it began answering 500)", s.DetectedMs)},
		{s.ToUnhealthy == 0, fmt.Sprintf("%d requests reached the failing backend after it was marked unhealthy", s.ToUnhealthy)},
		{s.CheckDetected, verdict(s.CheckDetected,
			fmt.Sprintf("the backend whose health check fails while its traffic succeeds was detected (%dms after its health check began answering 500)", s.CheckDetectedMs),
			"the backend whose health check fails while its traffic succeeds was never detected")},
		{s.ToCheckFailing == 0, verdict(s.CheckDetected,
			fmt.Sprintf("%d requests reached the backend whose health check fails after it was marked unhealthy", s.ToCheckFailing),
			fmt.Sprintf("%d requests reached the backend whose health check fails, never detected", s.ToCheckFailing))},
		{s.Resets == 0, fmt.Sprintf("%d statuses reset by a DNS change", s.Resets)},
		{s.StaleProbes == 0 && s.StaleRequests == 0, fmt.Sprintf("%d probes and %d requests reached addresses after their removal from DNS", s.StaleProbes, s.StaleRequests)},
	}
	if s.StepsOK == len(story) {
		return append(cs, check{true, fmt.Sprintf("every step of the story showed what it should (%d of %d)", s.StepsOK, len(story))})
	}
	if len(s.steps) < len(story) {
		cs = append(cs, check{false, fmt.Sprintf("the story was cut short: %d of %d steps played", len(s.steps), len(story))})
	}
	for _, st := range s.steps {
		if !st.ok {
			cs = append(cs, check{false, fmt.Sprintf("step %s: %s", st.title, st.text)})
		}
	}
	return cs
}

// summaryLines formats the summaries: one column per world, then vigil's
// invariants as OK or FAIL lines.
func summaryLines(sc scale, ss []*summary) []string {
	rows := []struct {
		name string
		cell func(*summary) string
	}{
		{"requests sent", func(s *summary) string { return strconv.FormatInt(s.Sent, 10) }},
		{"requests that reached a backend", func(s *summary) string { return strconv.Itoa(s.Reached) }},
		{"requests to unhealthy after detection", func(s *summary) string { return strconv.Itoa(s.ToUnhealthy) }},
		{"requests to check-failing after detection", func(s *summary) string {
			return strconv.Itoa(s.ToCheckFailing) + verdict(s.CheckDetected, "", " (never detected)")
		}},
		{"statuses reset by a change", func(s *summary) string { return strconv.Itoa(s.Resets) }},
		{"probes to removed addresses", func(s *summary) string { return strconv.Itoa(s.StaleProbes) }},
		{"requests to removed addresses", func(s *summary) string { return strconv.Itoa(s.StaleRequests) }},
		{"failing backend detected after (ms)", func(s *summary) string { return msCell(s.DetectedMs) }},
		{"failing health check detected after (ms)", func(s *summary) string { return msCell(s.CheckDetectedMs) }},
	}
	label, col := 0, 12
	for _, r := range rows {
		label = max(label, len(r.name))
		for _, s := range ss {
			col = max(col, len(r.cell(s))+2)
		}
	}
	lines := []string{"", "summary (counted at the backends):"}
	head := fmt.Sprintf("  %-*s", label, "")
	for _, s := range ss {
		head += fmt.Sprintf("%*s", col, s.World)
	}
	lines = append(lines, head)
	for _, r := range rows {
		l := fmt.Sprintf("  %-*s", label, r.name)
		for _, s := range ss {
			l += fmt.Sprintf("%*s", col, r.cell(s))
		}
		lines = append(lines, l)
	}
	lines = append(lines, "")
	for _, d := range definitions(sc) {
		lines = append(lines, "  "+d)
	}
	lines = append(lines, "")
	for _, c := range checks(ss[0]) {
		lines = append(lines, verdict(c.ok, "OK:   ", "FAIL: ")+c.text)
	}
	if len(ss) == 1 {
		lines = append(lines, "", "run with -compare to play the same story against a checker destroyed and rebuilt on every DNS change, side by side")
	}
	if len(ss) > 1 {
		b := ss[1]
		detected := "never detected"
		if b.CheckDetected {
			detected = fmt.Sprintf("detected after %dms", b.CheckDetectedMs)
		}
		lines = append(lines, fmt.Sprintf("the destroy-and-rebuild baseline, same story: %d resets, %d requests to the unhealthy backend after detection, %d requests to the backend whose health check failed (%s), %d probes to removed addresses; %d of %d steps showed what they should",
			b.Resets, b.ToUnhealthy, b.ToCheckFailing, detected, b.StaleProbes, b.StepsOK, b.Steps))
	}
	return lines
}

// msCell is a detection time in milliseconds for the summary's table, or
// "never".
func msCell(d int64) string {
	if d < 0 {
		return "never"
	}
	return strconv.FormatInt(d, 10)
}
