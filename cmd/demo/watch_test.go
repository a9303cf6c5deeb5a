package main

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

// watch narrates the DNS answer, then (never before it) that the upstream
// is ready, then the status changes of the probes.
func TestWatchFollowsName(t *testing.T) {
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	b, err := backendtest.Start(netip.MustParseAddr("127.0.0.1"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := dns.SetA("watch.demo.test", 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	b.SetStatus(500)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	code := run(ctx, []string{"watch", "-name", "watch.demo.test", "-dns", dns.Addr(),
		"-port", strconv.Itoa(int(b.Port)), "-path", "/healthz", "-interval", "100ms", "-json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	ls := parseLines(t, out.String())
	index := func(text string) int {
		for i, l := range ls {
			if strings.Contains(l.Text, text) {
				return i
			}
		}
		t.Errorf("the output lacks %q:\n%s", text, out.String())
		return -1
	}
	answer, ready, failed := index("dns: 127.0.0.1:"), index("ready: a target is healthy"), index("healthy -> unhealthy: HTTP 500")
	if answer > ready || ready > failed {
		t.Errorf("the DNS answer (line %d), ready (%d) and the failure (%d) are out of order:\n%s", answer, ready, failed, out.String())
	}
	if b.Paths()["/healthz"] == 0 {
		t.Error("no probe reached the backend")
	}
}

// When DNS fails, watch says so and, at the end, that no target was ever
// healthy, and why.
func TestWatchUnreachableDNS(t *testing.T) {
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	dns.SetRcode("nowhere.demo.test", 2) // SERVFAIL
	addr := dns.Addr()

	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	var out, errOut strings.Builder
	if code := run(ctx, []string{"watch", "-name", "nowhere.demo.test", "-dns", addr}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for _, want := range []string{"dns: lookup failed", "stopped before any target was healthy", "last DNS failure"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ready: a target") {
		t.Errorf("ready without an answer:\n%s", out.String())
	}
}
