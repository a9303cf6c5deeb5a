package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runDemo runs the command with args and returns its exit code and output.
func runDemo(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// fast plays the story in 3 seconds.
var fast = []string{"-duration", "3s"}

func TestStoryHoldsInvariants(t *testing.T) {
	code, out, errOut := runDemo(t, append(fast, "-json")...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	s := lastSummary(t, out)
	v := s[0]
	if v.World != "vigil" {
		t.Fatalf("first summary is %q", v.World)
	}
	if v.Sent == 0 || v.Reached == 0 {
		t.Errorf("no traffic: sent %d, reached %d", v.Sent, v.Reached)
	}
	if v.DetectedMs < 0 {
		t.Error("the failing backend was never detected")
	}
	if v.ToUnhealthy != 0 || v.Resets != 0 || v.StaleProbes != 0 {
		t.Errorf("vigil: %d requests to unhealthy, %d resets, %d probes after removal; want 0",
			v.ToUnhealthy, v.Resets, v.StaleProbes)
	}
	if v.Steps != len(story) || v.StepsOK != len(story) {
		t.Errorf("vigil: %d of %d steps as they should, %d played; failed %q", v.StepsOK, len(story), v.Steps, v.Failed)
	}
	checkFirstProbes(t, out)
}

// The last step: a backend's health check answers 500 while its traffic
// answers 200. vigil's active verdict marks it unhealthy, whatever the
// traffic's successes say, and no request sent after that reaches it,
// counted at the backend; the step says so, with the verdicts.
func TestHealthCheckFailureStopsTraffic(t *testing.T) {
	code, out, errOut := runDemo(t, append(fast, "-json")...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	v := lastSummary(t, out)[0]
	if !v.CheckDetected || v.CheckDetectedMs < 0 {
		t.Fatalf("vigil never marked the backend whose health check fails unhealthy: %+v", *v)
	}
	if v.ToCheckFailing != 0 {
		t.Errorf("vigil sent %d requests to the backend whose health check fails after marking it unhealthy", v.ToCheckFailing)
	}
	check := stepCheck(t, out, len(story), "vigil")
	for _, want := range []string{"marked unhealthy", "active verdict unhealthy, passive healthy", "0 requests reached it since"} {
		if !strings.Contains(check, want) {
			t.Errorf("the step's check lacks %q: %q", want, check)
		}
	}
}

// stepCheck returns the text of world's check of step n (1-based) in the
// JSON lines out.
func stepCheck(t *testing.T, out string, n int, world string) string {
	t.Helper()
	step := 0
	for line := range strings.Lines(out) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			continue
		}
		switch {
		case e.Type == evStep:
			step++
		case e.Type == evCheck && step == n && e.World == world:
			return e.Text
		}
	}
	t.Fatalf("no check of step %d for %s", n, world)
	return ""
}

// checkFirstProbes checks that every first probe out reports is timed from
// when the address appeared in DNS, and took some time.
func checkFirstProbes(t *testing.T, out string) {
	t.Helper()
	re := regexp.MustCompile(`probed ([0-9.]+)ms after DNS began answering with it`)
	n := 0
	for line := range strings.Lines(out) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Type != evProbe {
			continue
		}
		n++
		m := re.FindStringSubmatch(e.Text)
		if m == nil {
			t.Errorf("first probe not timed from DNS: %q", e.Text)
			continue
		}
		if d, err := strconv.ParseFloat(m[1], 64); err != nil || d <= 0 {
			t.Errorf("first probe timed %sms after DNS: %q", m[1], e.Text)
		}
	}
	if n == 0 {
		t.Error("no first probe reported")
	}
}

func TestCompareBaselineResets(t *testing.T) {
	code, out, errOut := runDemo(t, append(fast, "-compare", "-json")...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	e := summaryEvent(t, out)
	s := e.Summary
	if len(s) != 2 || s[1].World != "rebuild" {
		t.Fatalf("summaries: %+v", s)
	}
	v, b := s[0], s[1]
	if v.Resets != 0 || v.ToUnhealthy != 0 || v.StaleProbes != 0 {
		t.Errorf("vigil: %+v", *v)
	}
	// The baseline fails its checks without failing the run.
	if e.Passed == nil || !*e.Passed || !v.Passed || len(v.Failed) > 0 {
		t.Errorf("run passed %v, vigil passed %v, failed %q", e.Passed, v.Passed, v.Failed)
	}
	if b.Passed || len(b.Failed) == 0 {
		t.Errorf("the baseline passed %v, failed %q", b.Passed, b.Failed)
	}
	if b.Resets == 0 {
		t.Errorf("baseline shows no resets: %+v", *b)
	}
	t.Logf("vigil %+v", *v)
	t.Logf("rebuild %+v", *b)
}

// The baseline counts its traffic's outcomes on its probes' counters: with
// traffic flowing, a success lands between any two probes and resets the
// failure the first counted, so it never detects the health check that
// fails while the traffic succeeds, and keeps sending it requests. The
// rate is high enough, against the 3s story's probe interval of 75ms, that
// a request lands between any two probes even on a loaded machine.
func TestCompareBaselineMissesHealthCheckFailure(t *testing.T) {
	code, out, errOut := runDemo(t, append(fast, "-compare", "-json", "-rate", "300")...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	s := summaryEvent(t, out).Summary
	if len(s) != 2 {
		t.Fatalf("summaries: %+v", s)
	}
	v, b := s[0], s[1]
	if !v.CheckDetected || v.ToCheckFailing != 0 {
		t.Errorf("vigil: detected %v, %d requests after detection", v.CheckDetected, v.ToCheckFailing)
	}
	if b.CheckDetected || b.CheckDetectedMs != -1 {
		t.Errorf("the baseline detected the failing health check after %dms", b.CheckDetectedMs)
	}
	if b.ToCheckFailing == 0 {
		t.Errorf("the baseline sent no request to the backend whose health check fails: %+v", *b)
	}
	failed := strings.Join(b.Failed, "\n")
	for _, want := range []string{"was never detected", "never marked unhealthy"} {
		if !strings.Contains(failed, want) {
			t.Errorf("the baseline's failed checks lack %q:\n%s", want, failed)
		}
	}
	if check := stepCheck(t, out, len(story), "rebuild"); !strings.Contains(check, "never marked unhealthy") {
		t.Errorf("the baseline's last step says %q", check)
	}
	t.Logf("vigil: detected after %dms, %d requests since; rebuild: %d requests, never detected", v.CheckDetectedMs, v.ToCheckFailing, b.ToCheckFailing)
}

// lastSummary checks that every line of out is a JSON event with a type and
// returns the summaries of the final one.
func lastSummary(t *testing.T, out string) []*summary {
	t.Helper()
	return summaryEvent(t, out).Summary
}

// summaryEvent checks that every line of out is a JSON event with a type
// and returns the final one, the summary.
func summaryEvent(t *testing.T, out string) event {
	t.Helper()
	var last event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d is not JSON: %v: %q", n+1, err, sc.Text())
		}
		if e.Type == "" {
			t.Fatalf("line %d has no type: %q", n+1, sc.Text())
		}
		last = e
		n++
	}
	if last.Type != evSummary || len(last.Summary) == 0 {
		t.Fatalf("the last of %d lines is not a summary: %+v", n, last)
	}
	return last
}

func TestPlainOutputHasNoEscapes(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "vigil.log")
	code, out, errOut := runDemo(t, "-duration", "2s", "-log", logFile)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	// -log: vigil's own log, as vigil.WithLogger writes it.
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"resolver: address set changed", "health: status changed", "reason=\"HTTP 500 from GET /healthz\""} {
		if !strings.Contains(string(log), want) {
			t.Errorf("vigil's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("piped output holds escape codes:\n%q", out)
	}
	for _, want := range []string{"== 1/8", "== 8/8", "OK:", "summary", "requests to check-failing after detection"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestUnwritableLog(t *testing.T) {
	code, out, errOut := runDemo(t, "-log", filepath.Join(t.TempDir(), "no", "such", "dir", "vigil.log"))
	if code != exitFail || !strings.Contains(errOut, "-log") || out != "" {
		t.Errorf("exit %d, stderr %q, stdout %q; want %d and a -log error", code, errOut, out, exitFail)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-nosuchflag"},
		{"-duration", "soon"},
		{"-duration", "1s"},
		{"-speed", "0"},
		{"-speed", "NaN"},
		{"-speed", "Inf"},
		{"-speed", "-Inf"},
		{"extra"},
		{"-json", "extra"},
		{"watch"},
		{"watch", "-name", "x", "-type", "MX"},
		{"watch", "-name", "x", "-port", "0"},
		{"watch", "-name", "x", "-dns", "not a server"},
		{"watch", "-name", "x", "more"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runDemo(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errOut, "usage") {
				t.Errorf("no usage message in %q", errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
		})
	}
}

// The limits on -duration apply to the story's length, -duration divided
// by -speed. A story that passes them starts, and stops at once here.
func TestStoryLengthLimits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-duration", "1h", "-speed", "0.5"}, false},
		{[]string{"-duration", "30m", "-speed", "0.1"}, false},
		{[]string{"-duration", "1s", "-speed", "0.5"}, true},
		{[]string{"-duration", "2h", "-speed", "2"}, true},
	} {
		var out, errOut bytes.Buffer
		code := run(ctx, c.args, &out, &errOut)
		if (code != exitUsage) != c.ok {
			t.Errorf("%v: exit %d; stderr %q", c.args, code, errOut.String())
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"watch", "-h"}} {
		code, _, errOut := runDemo(t, args...)
		if code != exitOK || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
