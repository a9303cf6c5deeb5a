package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every renderer shows the requests sent to the backend whose health check
// fails: 0 for vigil, the baseline's count with "never detected".
func TestSummaryShowsCheckFailureInEveryRenderer(t *testing.T) {
	v := &summary{World: "vigil", Sent: 10, Reached: 10, DetectedMs: 50, CheckDetected: true, CheckDetectedMs: 600, Passed: true}
	b := &summary{World: "rebuild", Sent: 10, Reached: 10, DetectedMs: 50, ToCheckFailing: 83, CheckDetectedMs: -1}
	sums := []*summary{v, b}
	ok := true
	e := event{Type: evSummary, Text: "the story is over", Summary: sums, Passed: &ok}
	lines := summaryLines(newScale(3*time.Second, 10), sums)

	var row string
	for _, l := range lines {
		if strings.Contains(l, "requests to check-failing after detection") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 4 || f[len(f)-4] != "0" || !strings.HasSuffix(row, "83 (never detected)") {
		t.Errorf("the row reads %q; want vigil 0, rebuild 83 (never detected)", row)
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"failing health check detected after (ms)",
		"OK:   0 requests reached the backend whose health check fails after it was marked unhealthy",
		"83 requests to the backend whose health check failed (never detected)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}

	for name, r := range map[string]func(*bytes.Buffer) renderer{
		"plain": func(out *bytes.Buffer) renderer { return newPlainRenderer(out) },
		"tty":   func(out *bytes.Buffer) renderer { return newTTYRenderer(out) },
	} {
		var out bytes.Buffer
		r(&out).summary(e, lines)
		if !strings.Contains(out.String(), row) {
			t.Errorf("%s: the summary lacks the row %q:\n%s", name, row, out.String())
		}
	}

	var out bytes.Buffer
	newJSONRenderer(&out).summary(e, lines)
	var got struct {
		Summary []map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Summary) != 2 {
		t.Fatalf("JSON summary %q: %v", out.String(), err)
	}
	for i, want := range []struct {
		requests, ms float64
		detected     bool
	}{{0, 600, true}, {83, -1, false}} {
		s := got.Summary[i]
		if s["requests_to_check_failing_after_detection"] != want.requests || s["check_failure_detected"] != want.detected || s["check_failure_detected_after_ms"] != want.ms {
			t.Errorf("JSON summary of %v: %v", s["world"], s)
		}
	}
}
