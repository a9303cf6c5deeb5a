package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/rebuild"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fast is the story's length in tests: steps a second or more apart.
const fast = 8 * time.Second

// parseLines decodes the JSON lines of out, failing on any other line.
func parseLines(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	for s := range strings.Lines(out) {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("not a JSON line: %q", s)
		}
		ls = append(ls, l)
	}
	return ls
}

// said reports whether who said something containing text.
func said(ls []line, who, text string) bool {
	for _, l := range ls {
		if l.Who == who && strings.Contains(l.Text, text) {
			return true
		}
	}
	return false
}

// The story against vigil and the baseline, counted at the backends and
// from the checkers' own status changes: vigil finds both failures and then
// sends them no request, resets no status and probes no removed address;
// the baseline, on the same counters, resets statuses and probes the
// address that left DNS. The metrics are served while it plays.
func TestStoryCompare(t *testing.T) {
	t.Parallel()
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-duration", fast.String(), "-compare", "-json", "-metrics", "127.0.0.1:0"}, &out, &errOut)
	}()
	var url string
	testutil.Eventually(t, 5*time.Second, "the metrics address", func() bool {
		m := regexp.MustCompile(`metrics: (http://[^ "]+/metrics)`).FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return url != ""
	})
	testutil.Eventually(t, 10*time.Second, "a probe counted in the metrics", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`(?m)^vigil_probes_total\{.*\} [1-9]`).Match(body)
	})
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr %q\n%s", code, errOut.String(), out.String())
	}

	ls := parseLines(t, out.String())
	last := ls[len(ls)-1]
	if len(last.Summary) != 2 || last.OK == nil || !*last.OK {
		t.Fatalf("the last line is not a passing summary of two worlds: %+v", last)
	}
	v, b := last.Summary[0], last.Summary[1]
	t.Logf("vigil %+v\nrebuild %+v", v, b)
	if v.World != "vigil" || v.Sent == 0 || v.ToUnhealthy != 0 || v.Resets != 0 || v.RemovedProbes != 0 || v.LateChanges != 0 {
		t.Errorf("vigil: %+v; want traffic, and no request to a backend found unhealthy, no reset, no probe of a removed address, no late change", v)
	}
	if v.FailureFoundMs < 0 || v.CheckFoundMs < 0 {
		t.Errorf("vigil did not find both failures: %+v", v)
	}
	if b.World != "rebuild" || b.Resets == 0 || b.RemovedProbes == 0 {
		t.Errorf("the baseline: %+v; want resets and probes of a removed address", b)
	}
	for _, want := range []struct{ who, text string }{
		{"vigil", "127.0.0.12 healthy -> unhealthy"},
		{"vigil", "127.0.0.12 still unhealthy after the change"},
		{"vigil", "127.0.0.12 removed from the targets"},
		{"vigil", "127.0.0.12 is back as unhealthy: remembered"},
		{"vigil", "127.0.0.12 unhealthy -> healthy"},
		{"vigil", "127.0.0.13 healthy -> unhealthy: HTTP 500 from GET /healthz; active unhealthy, passive healthy"},
		{"rebuild", "127.0.0.12 RESET to healthy by the change"},
		{"rebuild", "127.0.0.12 left DNS but is still a target"},
	} {
		if !said(ls, want.who, want.text) {
			t.Errorf("%s never said %q", want.who, want.text)
		}
	}
	if said(ls, "vigil", "RESET") {
		t.Error("vigil reset a status")
	}
}

// A pipeline whose traffic ignores its checker's verdicts is caught: the
// requests its failing backends receive after the checker found them
// unhealthy are counted at the backends, and the story says it did not
// behave.
func TestStoryCountsRequestsToUnhealthy(t *testing.T) {
	t.Parallel()
	blind := builder{"blind", func(w *world, bus *events.Bus) (pipeline, error) {
		p, err := vigilPipeline(w, bus)
		// Round robin over the first four backends, never probed, never ejected.
		rr := rebuild.New(rebuild.Config{PassiveFailures: math.MaxInt})
		rr.SetTargets([]resolver.Address{w.addr(0), w.addr(1), w.addr(2), w.addr(3)})
		p.transport = rr.Transport(&http.Transport{})
		return p, err
	}}
	var out strings.Builder
	sums, err := playStory(context.Background(), fast, []builder{blind}, "", "", newNarrator(&out, false))
	if err != nil {
		t.Fatal(err)
	}
	s := sums[0]
	t.Logf("%+v", s)
	if s.FailureFoundMs < 0 || s.CheckFoundMs < 0 {
		t.Fatalf("the checker did not find both failures: %+v", s)
	}
	if s.ToUnhealthy == 0 || s.behaved() {
		t.Errorf("no request counted to a backend found unhealthy, though the traffic ignores the checker: %+v", s)
	}
	for _, want := range []string{"summary, counted at the backends", "blind did NOT behave"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
}

// The exit status: 2 and the usage for bad arguments, 0 for -h, 1 when
// interrupted (leaving nothing running: goleak checks).
func TestExitStatus(t *testing.T) {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx        context.Context
		args       []string
		code       int
		stderrSays string
	}{
		{context.Background(), []string{"-duration", "1s"}, exitUsage, "usage:"},
		{context.Background(), []string{"extra"}, exitUsage, "usage:"},
		{context.Background(), []string{"-fleet", "-compare"}, exitUsage, "usage:"},
		{context.Background(), []string{"watch"}, exitUsage, "usage:"},
		{context.Background(), []string{"watch", "-name", "x", "-type", "MX"}, exitUsage, "usage:"},
		{context.Background(), []string{"-h"}, exitOK, "usage:"},
		{stopped, []string{"-compare"}, exitFail, "interrupted"},
		{stopped, []string{"-fleet"}, exitFail, "interrupted"},
	} {
		var errOut strings.Builder
		if code := run(c.ctx, c.args, io.Discard, &errOut); code != c.code || !strings.Contains(errOut.String(), c.stderrSays) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", c.args, code, errOut.String(), c.code, c.stderrSays)
		}
	}
}
