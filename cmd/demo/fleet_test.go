package main

import (
	"context"
	"strings"
	"testing"
)

// demo -fleet plays to the end, in JSON: the clients join, every one finds
// the failing backend unhealthy, and healthy again once it recovers.
func TestFleetStory(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"-fleet", "-duration", "8s", "-json"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut.String(), out.String())
	}
	ls := parseLines(t, out.String())
	for _, want := range []struct{ who, text string }{
		{"", "alone: probes per backend per interval"},
		{"client-4", "joins the fleet"},
		{"", "sharing: probes per backend per interval"},
		{"client-3", "holds 127.0.0.12 unhealthy"},
		{"", "every client holds 127.0.0.12 healthy again"},
	} {
		if !said(ls, want.who, want.text) {
			t.Errorf("%q never said %q:\n%s", want.who, want.text, out.String())
		}
	}
	if last := ls[len(ls)-1]; last.OK == nil || !*last.OK {
		t.Errorf("the last line is not a success: %+v", last)
	}
}
