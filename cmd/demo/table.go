package main

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// row is one address of the live table.
type row struct {
	Addr      string  `json:"addr"`
	InDNS     bool    `json:"in_dns"`
	Status    string  `json:"status"` // healthy, unhealthy, "-" (not a target) or "remembered unhealthy"
	Target    bool    `json:"target"` // one of the checker's targets
	Successes int     `json:"successes"`
	Failures  int     `json:"failures"`
	LastProbe float64 `json:"last_probe_ago"` // seconds; -1 when never probed
	Probes    int     `json:"probes"`         // received by the backend
	Requests  int     `json:"requests"`       // traffic received by the backend
	Share     float64 `json:"share"`          // of the traffic: in this step (state events), of the last second (live table)
	Failing   bool    `json:"failing"`        // the backend answers 500
	// CheckFailing: the backend's health endpoint answers 500, its traffic
	// does not.
	CheckFailing bool `json:"check_failing"`
}

// shares remembers recent traffic counts per backend, to compute each one's
// share of the last second.
type shares struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at     time.Time
	counts map[netip.Addr]int
}

// add records counts and returns each address's share since about a second
// ago.
func (s *shares) add(counts map[netip.Addr]int) map[netip.Addr]float64 {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sample{now, counts})
	for len(s.samples) > 2 && now.Sub(s.samples[1].at) >= time.Second {
		s.samples = s.samples[1:]
	}
	old := s.samples[0].counts
	total := 0
	for ip, n := range counts {
		total += n - old[ip]
	}
	out := make(map[netip.Addr]float64, len(counts))
	for ip, n := range counts {
		if total > 0 {
			out[ip] = float64(n-old[ip]) / float64(total)
		}
	}
	return out
}

// rows returns the table of the world's backends, from the checker's and the
// backends' points of view.
func (w *world) rows() []row {
	now := time.Now()
	out := make([]row, len(w.backends))
	counts := make(map[netip.Addr]int, len(w.backends))
	for i, b := range w.backends {
		r := &out[i]
		r.Addr = b.IP.String()
		for p, n := range b.Paths() {
			switch {
			case p == probePath:
				r.Probes = n
			case strings.HasPrefix(p, trafficPath):
				r.Requests += n
			}
		}
		counts[b.IP] = r.Requests
		r.InDNS = w.obs.isInDNS(b.IP)
		r.Failing, r.CheckFailing = w.obs.isFailing(b.IP)
		r.Status, r.LastProbe = "-", -1
		a := w.obs.addrOf(b.IP)
		if !a.IP.IsValid() {
			continue
		}
		if st, ok := w.view.target(a); ok {
			r.Target = true
			r.Status = st.status.String()
			r.Successes, r.Failures = st.successes, st.failures
			if !st.lastProbe.IsZero() {
				r.LastProbe = now.Sub(st.lastProbe).Seconds()
			}
		} else if st, ok := w.view.remembered(a); ok {
			r.Status = "remembered " + st.String()
		}
	}
	share := w.shares.add(counts)
	for i := range out {
		out[i].Share = share[w.backends[i].IP]
	}
	return out
}

// markStep starts counting the traffic shares of a step: stepRows
// returns them.
func (w *world) markStep() {
	w.stepBase = w.stepBase[:0]
	for _, r := range w.rows() {
		w.stepBase = append(w.stepBase, r.Requests)
	}
}

// stepRows returns the table with each backend's share of the traffic
// since markStep.
func (w *world) stepRows() []row {
	rows := w.rows()
	since := make([]int, len(rows))
	total := 0
	for i, r := range rows {
		if i < len(w.stepBase) {
			since[i] = r.Requests - w.stepBase[i]
		} else {
			since[i] = r.Requests
		}
		total += since[i]
	}
	for i := range rows {
		rows[i].Share = 0
		if total > 0 {
			rows[i].Share = float64(since[i]) / float64(total)
		}
	}
	return rows
}

// ipList lists the IPs of the backends whose indexes are given.
func (w *world) ipList(idx ...int) string {
	s := make([]string, len(idx))
	for i, n := range idx {
		s[i] = w.ip(n).String()
	}
	return strings.Join(s, " ")
}

// stateLine is the table in one line, for plain output.
func stateLine(rows []row) string {
	var parts []string
	for _, r := range rows {
		if !r.InDNS && !r.Target && r.Status == "-" && r.Probes == 0 {
			continue // never part of the story so far
		}
		s := r.Addr + " " + r.Status
		if !r.InDNS {
			s += " (not in DNS)"
		}
		switch {
		case r.Failing:
			s += " [answers 500]"
		case r.CheckFailing:
			s += " [" + probePath + " answers 500]"
		}
		if r.InDNS {
			s += fmt.Sprintf(" %d%%", int(r.Share*100+0.5))
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " | ")
}

// tableLines formats a world's table for the terminal, with ANSI colours.
func tableLines(w *world, rows []row) []string {
	sent, none := w.gen.issued.Load(), w.gen.noHealthy.Load()
	lines := []string{
		fmt.Sprintf("%s%-7s%s %s:%d   requests sent %d, refused for want of a healthy target %d",
			ansiBold, w.label, ansiReset, w.name, w.port, sent, none),
		ansiDim + fmt.Sprintf("  %-13s %-4s %-20s %3s %4s %10s %7s %8s  %s", "ADDRESS", "DNS", "STATUS", "OK", "FAIL", "LAST PROBE", "PROBES", "REQUESTS", "SHARE (last 1s)") + ansiReset,
	}
	for _, r := range rows {
		dns := "no"
		if r.InDNS {
			dns = "yes"
		}
		status := fmt.Sprintf("%-20s", r.Status)
		switch {
		case strings.HasSuffix(r.Status, "unhealthy"):
			status = ansiRed + status + ansiReset
		case r.Status == "healthy":
			status = ansiGreen + status + ansiReset
		}
		counters, last := "  -    -", "-"
		if r.Target {
			counters = fmt.Sprintf("%3d %4d", r.Successes, r.Failures)
		}
		if r.LastProbe >= 0 {
			last = ms(time.Duration(r.LastProbe*float64(time.Second))) + " ago"
		}
		bar := strings.Repeat("#", int(r.Share*10+0.5))
		note := ""
		switch {
		case r.Failing:
			note = ansiRed + "  answers 500" + ansiReset
		case r.CheckFailing:
			note = ansiRed + "  " + probePath + " answers 500" + ansiReset
		}
		line := fmt.Sprintf("  %-13s %-4s %s %s %10s %7d %8d  %-10s %3d%%%s", r.Addr, dns, status, counters, last, r.Probes, r.Requests, bar, int(r.Share*100+0.5), note)
		if !r.InDNS {
			line = ansiDim + line + ansiReset
		}
		lines = append(lines, line)
	}
	return lines
}

// ANSI escapes, used on terminals only.
const (
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiReset = "\x1b[0m"
)
