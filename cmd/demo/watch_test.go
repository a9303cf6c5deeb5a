package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

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

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"watch", "-name", "watch.demo.test", "-dns", dns.Addr(),
		"-port", strconv.Itoa(int(b.Port)), "-path", "/healthz", "-interval", "100ms"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for _, want := range []string{"dns: 1 addresses +127.0.0.1", "ready: a target is healthy", "healthy -> unhealthy: HTTP 500"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if b.Paths()["/healthz"] == 0 {
		t.Error("no probe reached the backend")
	}
}

func TestWatchUnreachableDNS(t *testing.T) {
	// A UDP port nothing listens on: queries are refused or time out.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"watch", "-name", "nowhere.demo.test", "-dns", addr}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "DNS lookup failed") || !strings.Contains(out.String(), "no address known yet") {
		t.Errorf("no failure shown:\n%s", out.String())
	}
	if strings.Contains(out.String(), "last known 0 addresses") {
		t.Errorf("a first failure claims a known set:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopped before any target was healthy") || !strings.Contains(out.String(), "last DNS failure") {
		t.Errorf("the end does not say that the upstream never got ready, and why:\n%s", out.String())
	}
}

func TestWatchUsageListsFlags(t *testing.T) {
	_, _, errOut := runDemo(t, "watch", "-h")
	usage, _, _ := strings.Cut(errOut, "\n")
	var missing []string
	watchFlags(&watchOptions{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(usage, "-"+f.Name) {
			missing = append(missing, f.Name)
		}
	})
	if len(missing) > 0 {
		t.Errorf("usage line %q lacks %v", usage, missing)
	}
}
