package health

import (
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// A target keeps what an operator's status page shows: its last probe
// (when it started, how long it took, its outcome and reason) and its last
// status changes, oldest first, at most HistorySize. Both move into memory
// with the target and come back with it. On a fake clock: exact times.
func TestTargetKeepsLastProbeAndHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := newScripted()
		pr.delay = 30 * time.Millisecond
		cfg := fast("history", time.Second)
		cfg.Active.Prober = pr
		cfg.Active.Healthy.Successes = 1
		cfg.Active.Unhealthy.HTTPFailures = 1
		c := newChecker(t, cfg, nil, nil)
		as := loopback(40, 2, "history.test")
		a := as[0]
		pr.set(a, ProbeHTTPFailure)
		began := time.Now()
		c.SetTargets(as)
		start(t, c)
		time.Sleep(pr.delay)
		synctest.Wait()
		tg := mustTarget(t, c, a)
		want := ProbeRecord{Start: began, Duration: pr.delay, Outcome: ProbeHTTPFailure, Reason: "scripted http_failure"}
		if tg.Probe != want {
			t.Fatalf("last probe %+v, want %+v", tg.Probe, want)
		}
		first := Transition{At: began.Add(pr.delay), From: Healthy, To: Unhealthy, Active: Unhealthy, Passive: Healthy,
			Reason: "scripted http_failure"}
		if len(tg.History) != 1 || tg.History[0] != first {
			t.Fatalf("history %+v, want [%+v]", tg.History, first)
		}

		// Every probe now flips the status: 2×HistorySize changes more.
		pr.delay = 0
		for i := range 2 * HistorySize {
			o := ProbeSuccess
			if i%2 == 1 {
				o = ProbeHTTPFailure
			}
			pr.set(a, o)
			for n := pr.callsOf(a); pr.callsOf(a) == n; {
				time.Sleep(10 * time.Millisecond)
			}
			synctest.Wait()
		}
		tg = mustTarget(t, c, a)
		h := tg.History
		if len(h) != HistorySize {
			t.Fatalf("%d changes kept, want %d: %+v", len(h), HistorySize, h)
		}
		for i, tr := range h {
			if (i > 0 && !tr.At.After(h[i-1].At)) || tr.From == tr.To || (i > 0 && tr.From != h[i-1].To) {
				t.Fatalf("history out of order or not the changes: %+v", h)
			}
		}
		if last := h[len(h)-1]; last.To != tg.Status || last.At != tg.LastChange || last.Reason != tg.Reason {
			t.Fatalf("the newest change %+v is not the target's %+v", last, tg)
		}
		h[0].Reason = "changed by the caller" // the caller owns its copy
		if again := mustTarget(t, c, a); again.History[0].Reason == h[0].Reason {
			t.Fatal("Target shares its history with the checker")
		}

		// Into memory and back, before its next probe can end.
		pr.delay = time.Second
		tg = mustTarget(t, c, a)
		left := time.Now()
		c.SetTargets(as[1:])
		r, ok := c.Remembered(a)
		if !ok || !r.Departed.Equal(left) || r.Probe != tg.Probe || !reflect.DeepEqual(r.History, tg.History) {
			t.Fatalf("remembered %+v (%v), was %+v", r, ok, tg)
		}
		if all := c.RememberedTargets(); len(all) != 1 || !reflect.DeepEqual(all[0], r) {
			t.Fatalf("RememberedTargets %+v, want [%+v]", all, r)
		}
		c.SetTargets(as)
		back := mustTarget(t, c, a)
		if !back.Departed.IsZero() || back.Probe != tg.Probe || !reflect.DeepEqual(back.History, tg.History) {
			t.Fatalf("came back as %+v, left as %+v", back, tg)
		}
	})
}

// RememberedTargets lists a checker's departed targets, in address order,
// each with when it left: as many as its memory holds, the most recently
// departed.
func TestRememberedTargets(t *testing.T) {
	cfg := passiveOnly("listed")
	cfg.Memory = 3
	c := newChecker(t, cfg, nil, nil)
	as := loopback(41, 6, "listed.test")
	c.SetTargets(as)
	c.ReportTCPFailure(as[4])
	c.ReportTCPFailure(as[4])
	for i := range 5 { // as[0] leaves first, as[4] last; as[5] stays
		c.SetTargets(as[i+1:])
	}
	got := c.RememberedTargets()
	if want := as[2:5]; !slices.Equal(addrsOf(got), want) {
		t.Fatalf("remembered %v, want %v (the three most recently departed)", addrsOf(got), want)
	}
	for _, r := range got {
		if r.Departed.IsZero() {
			t.Fatalf("%v without its departure", r.Address)
		}
	}
	if got[2].Passive != Unhealthy || got[0].Passive != Healthy {
		t.Fatalf("remembered states %+v", got)
	}
	if n := c.Stats().Remembered; n != 3 {
		t.Fatalf("Stats().Remembered = %d, want 3", n)
	}
	if _, ok := c.Remembered(as[5]); ok {
		t.Fatal("a live target is remembered")
	}
	c.SetTargets(as)
	if got := c.RememberedTargets(); len(got) != 0 {
		t.Fatalf("returned targets still remembered: %v", addrsOf(got))
	}
}
