package main

import (
	"context"
	"strings"
	"testing"
)

// demo -fleet shows what it should and says so: probes per backend falling
// from N to r, a failure reaching every client, a takeover, a recovery.
func TestFleetStory(t *testing.T) {
	code, out, errOut := runDemo(t, "-fleet", "-speed", "2")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"5 clients probe alone",
		"client-4 joins the fleet",
		"all 5 clients share",
		"(fleet member client-",
		"taken over after",
		"healthy again",
		"summary:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the story never says %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "✓"); n != 4 || strings.Contains(out, "✗") {
		t.Errorf("summary: %d checks passed, want 4 and none failed:\n%s", n, out)
	}
}

func TestFleetStoryEndsWhenInterrupted(t *testing.T) {
	// A story cut short by its context fails and stops everything it started
	// (goleak checks the rest).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut strings.Builder
	if code := run(ctx, []string{"-fleet", "-speed", "10"}, &out, &errOut); code != exitFail {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFail, out.String(), errOut.String())
	}
}
