package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/statuspage"
)

// statusURL waits for the narration in out to give the status page's URL.
func statusURL(t *testing.T, out *testutil.Buffer) string {
	t.Helper()
	var url string
	testutil.Eventually(t, 10*time.Second, "the status page's address", func() bool {
		if m := regexp.MustCompile(`status page: (http://[^ "\n]+/)`).FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url
}

// getPage gets the status page at url as JSON; false while it cannot.
func getPage(url string) (statuspage.Page, bool) {
	var p statuspage.Page
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return p, false
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p, false
	}
	defer resp.Body.Close()
	return p, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&p) == nil
}

// While the story plays with -http, its status page shows the vigil
// world's upstream; the first failing backend shows as unhealthy with its
// reason. The page goes when the story ends.
func TestStoryStatusPage(t *testing.T) {
	t.Parallel()
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-duration", fast.String(), "-json", "-http", "127.0.0.1:0"}, &out, &errOut)
	}()
	url := statusURL(t, &out)
	testutil.Eventually(t, 15*time.Second, "the page to show 127.0.0.12 unhealthy for HTTP 500", func() bool {
		p, ok := getPage(url)
		if !ok || len(p.Upstreams) != 1 || !strings.HasPrefix(p.Upstreams[0].Name, "api-vigil.demo.test:") {
			return false
		}
		for _, a := range p.Upstreams[0].Addresses {
			if strings.HasPrefix(a.Address, "127.0.0.12:") && a.Status == "unhealthy" && a.Reason == "HTTP 500" {
				return true
			}
		}
		return false
	})
	if resp, err := http.Get(url + "favicon.ico"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /favicon.ico: %v %v; want 404 (the page is at / alone)", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errOut.String())
	}
	if _, ok := getPage(url); ok {
		t.Error("the status page is still served after the story")
	}
}

// watch -http serves the status page of the name it follows.
func TestWatchStatusPage(t *testing.T) {
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
	if err := dns.SetA("page.demo.test", 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"watch", "-name", "page.demo.test", "-dns", dns.Addr(), "-port", strconv.Itoa(int(b.Port)),
			"-interval", "100ms", "-json", "-http", "127.0.0.1:0"}, &out, &errOut)
	}()
	url := statusURL(t, &out)
	want := fmt.Sprintf("127.0.0.1:%d", b.Port)
	testutil.Eventually(t, 10*time.Second, "the page to show "+want+" probed and healthy", func() bool {
		p, ok := getPage(url)
		return ok && len(p.Upstreams) == 1 && len(p.Upstreams[0].Addresses) == 1 &&
			p.Upstreams[0].Addresses[0].Address == want && p.Upstreams[0].Addresses[0].Status == "healthy" &&
			p.Upstreams[0].Addresses[0].LastProbe != nil
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errOut.String())
	}
}

// -metrics is refused with -fleet, and an address -http cannot listen on
// fails the command, saying so.
func TestStatusPageFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args       []string
		code       int
		stderrSays string
	}{
		{[]string{"-fleet", "-metrics", "127.0.0.1:0"}, exitUsage, "usage:"},
		{[]string{"-duration", "4s", "-http", "256.0.0.1:0"}, exitFail, "-http"},
		{[]string{"watch", "-name", "x.demo.test", "-dns", "127.0.0.1:1", "-http", "256.0.0.1:0"}, exitFail, "-http"},
	} {
		var errOut strings.Builder
		if code := run(context.Background(), c.args, &strings.Builder{}, &errOut); code != c.code || !strings.Contains(errOut.String(), c.stderrSays) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", c.args, code, errOut.String(), c.code, c.stderrSays)
		}
	}
}
