package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// screenshotPath is the picture README.md shows, written by TestBrowser
// when VIGIL_UPDATE_SCREENSHOT=1.
const screenshotPath = "../docs/status.png"

// shop is the live world the browser looks at: api.shop.test resolving to
// four loopback backends, auth.shop.test failing in DNS, and a
// vigil.Client over both.
type shop struct {
	dns    *dnstest.Server
	api    []*backendtest.Backend
	client *vigil.Client
	apiUp  *vigil.Upstream
}

const (
	apiName  = "api.shop.test"
	authName = "auth.shop.test"
)

func newShop(t *testing.T) *shop {
	t.Helper()
	dns, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	api, err := backendtest.StartGroup(netip.MustParseAddr("127.0.78.1"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(api) })
	s := &shop{dns: dns, api: api}
	if err := s.setAPI(api...); err != nil {
		t.Fatal(err)
	}
	dns.SetRcode(authName, 2) // SERVFAIL
	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults: vigil.Config{
			Resolver: resolver.Config{Servers: []string{dns.Addr()}, Family: resolver.IPv4Only, MinTTL: 100 * time.Millisecond},
			Health: health.Config{Active: health.Active{
				Path:      probePath,
				Healthy:   health.HealthyRules{Interval: 100 * time.Millisecond},
				Unhealthy: health.UnhealthyRules{Interval: 100 * time.Millisecond, HTTPFailures: 2},
			}},
		},
		Upstreams: []vigil.Config{{Name: apiName, Port: api[0].Port}, {Name: authName, Port: api[0].Port}},
		Base:      refuse{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s.client = c
	var ok bool
	if s.apiUp, ok = c.Upstream(fmt.Sprintf("%s:%d", apiName, api[0].Port)); !ok {
		t.Fatal("the client has no upstream for " + apiName)
	}
	return s
}

// setAPI makes api.shop.test resolve to bs.
func (s *shop) setAPI(bs ...*backendtest.Backend) error {
	var ips []string
	for _, b := range bs {
		ips = append(ips, b.IP.String())
	}
	return s.dns.SetA(apiName, 1, ips...)
}

// addr is backend i of api.shop.test as a target.
func (s *shop) addr(i int) resolver.Address { return s.api[i].Address(apiName) }

// refuse is a base RoundTripper for hosts no upstream serves: the test
// sends none.
type refuse struct{}

func (refuse) RoundTrip(req *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("no upstream for %s in the test", req.URL.Host)
}

// domState is what the page shows, read from the browser's DOM.
type domState struct {
	Generated string        `json:"generated"`
	Scripts   int           `json:"scripts"`
	Upstreams []domUpstream `json:"upstreams"`
}

type domUpstream struct {
	Name       string       `json:"name"`
	Text       string       `json:"text"`
	Addresses  []domAddress `json:"addresses"`
	Remembered []string     `json:"remembered"`
}

type domAddress struct {
	Address string `json:"address"`
	Status  string `json:"status"`
	Text    string `json:"text"`
	// The timeline: its segments drawn, with their class, width on the
	// screen and fill colour.
	Segments []struct {
		Class string  `json:"class"`
		Width float64 `json:"width"`
		Fill  string  `json:"fill"`
	} `json:"segments"`
}

// readDOM is evaluated in the page: null until it has loaded, then the
// domState as JSON.
const readDOM = `(() => {
  if (document.readyState !== "complete" || !document.body) return null;
  return JSON.stringify({
    generated: document.body.dataset.generated,
    scripts: document.scripts.length,
    upstreams: [...document.querySelectorAll("section.upstream")].map(s => ({
      name: s.dataset.upstream,
      text: s.innerText,
      addresses: [...s.querySelectorAll("tr[data-address]")].map(r => ({
        address: r.dataset.address, status: r.dataset.status, text: r.innerText,
        segments: [...r.querySelectorAll("svg.tl rect.healthy, svg.tl rect.unhealthy, svg.tl rect.unknown")].map(e => ({
          class: e.getAttribute("class"), width: e.getBoundingClientRect().width, fill: getComputedStyle(e).fill})),
      })),
      remembered: [...s.querySelectorAll("tr[data-remembered]")].map(r => r.dataset.remembered),
    })),
  });
})()`

// upstream returns the upstream named name, if shown.
func (d *domState) upstream(name string) (domUpstream, bool) {
	i := slices.IndexFunc(d.Upstreams, func(u domUpstream) bool { return u.Name == name })
	if i < 0 {
		return domUpstream{}, false
	}
	return d.Upstreams[i], true
}

// address returns the address addr, if shown.
func (u domUpstream) address(addr string) (domAddress, bool) {
	i := slices.IndexFunc(u.Addresses, func(a domAddress) bool { return a.Address == addr })
	if i < 0 {
		return domAddress{}, false
	}
	return u.Addresses[i], true
}

// generatedAt returns when the page shown was made.
func (d *domState) generatedAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, d.Generated)
	return t
}

// watch polls the page's DOM until cond holds of it, failing the test when
// within passes first. A page reloading meanwhile is read again.
func watch(t *testing.T, tb *tab, within time.Duration, what string, cond func(*domState) bool) *domState {
	t.Helper()
	var last *domState
	var lastErr error
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := tb.eval(ctx, readDOM)
		cancel()
		if err != nil {
			lastErr = err // the page reloads: read it again
		} else if s != "" {
			var d domState
			if err := json.Unmarshal([]byte(s), &d); err != nil {
				t.Fatalf("the page's state does not decode: %v", err)
			}
			if last = &d; cond(&d) {
				return &d
			}
		}
		time.Sleep(20 * time.Millisecond) // between polls of a deadline
	}
	t.Fatalf("timed out after %s waiting for the page to show %s; last read: %+v, last error: %v", within, what, last, lastErr)
	return nil
}

// In a real browser, against a live Client: the page shows the upstreams
// and their addresses, reloads by itself, and the first page made after a
// backend turned unhealthy shows it so; its timelines are drawn; nothing
// in it fails (no console error, no failed request, no script at all).
// With VIGIL_UPDATE_SCREENSHOT=1 it writes the screenshot README.md shows.
func TestBrowser(t *testing.T) {
	chromium := testutil.RequireDaemon(t, "chromium", "chromium", "VIGIL_REQUIRE_CHROMIUM")
	s := newShop(t)
	h := newHandler(t, s.client, statuspage.Config{Title: "vigil · shop", Refresh: time.Second, Window: 15 * time.Second})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	b := startBrowser(t, chromium)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb, err := b.open(ctx)
	if err == nil {
		err = tb.navigate(ctx, srv.URL+"/")
	}
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	apiKey := fmt.Sprintf("%s:%d", apiName, s.api[0].Port)
	authKey := fmt.Sprintf("%s:%d", authName, s.api[0].Port)

	// The upstreams and every address of api.shop.test, healthy.
	first := watch(t, tb, 30*time.Second, "both upstreams and four healthy addresses", func(d *domState) bool {
		u, ok := d.upstream(apiKey)
		_, okAuth := d.upstream(authKey)
		if !ok || !okAuth || len(u.Addresses) != 4 {
			return false
		}
		for _, a := range u.Addresses {
			if a.Status != "healthy" {
				return false
			}
		}
		return true
	})
	if first.Scripts != 0 {
		t.Errorf("the page has %d scripts; it needs none", first.Scripts)
	}

	// A backend fails its probes: the first page made once the checker
	// knows shows it unhealthy, with the reason, and the browser loads
	// that page by itself.
	loads := b.Loads()
	s.api[1].SetStatus(http.StatusInternalServerError)
	testutil.Eventually(t, 10*time.Second, "the checker to find backend 1 unhealthy", func() bool {
		return s.apiUp.Checker().Status(s.addr(1)) == health.Unhealthy
	})
	known := time.Now()
	after := watch(t, tb, 15*time.Second, "a page made after the checker found backend 1 unhealthy", func(d *domState) bool {
		return d.generatedAt().After(known)
	})
	u, _ := after.upstream(apiKey)
	sick, ok := u.address(s.api[1].HostPort())
	if !ok {
		t.Fatalf("the page lost %s: %+v", s.api[1].HostPort(), u)
	}
	if sick.Status != "unhealthy" || !strings.Contains(sick.Text, "HTTP 500") {
		t.Errorf("the first page made after the checker found %s unhealthy shows it %s:\n%s", sick.Address, sick.Status, sick.Text)
	}
	if b.Loads() <= loads {
		t.Errorf("the page did not reload by itself (%d loads, %d before)", b.Loads(), loads)
	}
	// Its timeline is a picture: segments drawn with a width, in the
	// colours of the statuses.
	drawn := map[string]string{}
	for _, seg := range sick.Segments {
		if seg.Width > 0 {
			drawn[seg.Class] = seg.Fill
		}
	}
	if fill, ok := drawn["unhealthy"]; !ok || fill != "rgb(207, 34, 46)" {
		t.Errorf("the timeline of %s draws no red unhealthy segment: %+v", sick.Address, sick.Segments)
	}

	// More to see: backend 2's traffic fails until its passive verdict
	// ejects it (until a probe passes), backend 3 leaves DNS (remembered),
	// and auth.shop.test keeps failing in DNS.
	s.api[2].SetPathStatus("/work", http.StatusInternalServerError)
	hc := &http.Client{Transport: s.client.Transport, Timeout: 5 * time.Second}
	for n := 0; ; n++ {
		if t2, _ := s.apiUp.Checker().Target(s.addr(2)); t2.Passive == health.Unhealthy {
			break
		}
		if n == 300 {
			t.Fatal("300 requests did not eject backend 2")
		}
		if resp, err := hc.Get(fmt.Sprintf("http://%s/work", apiKey)); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	if err := s.setAPI(s.api[0], s.api[1], s.api[2]); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "backend 3 to leave the targets, remembered", func() bool {
		_, live := s.apiUp.Checker().Target(s.addr(3))
		_, kept := s.apiUp.Checker().Remembered(s.addr(3))
		return !live && kept
	})
	left := time.Now()
	watch(t, tb, 15*time.Second, "backend 2 ejected, backend 3 remembered, and the DNS failures of "+authName, func(d *domState) bool {
		u, ok := d.upstream(apiKey)
		auth, okAuth := d.upstream(authKey)
		if !ok || !okAuth || !d.generatedAt().After(left) {
			return false
		}
		// The ejection may have ended already, at a passing probe (and a
		// last request on probation may have ejected it again): the page
		// counts its recent ejections all the same.
		ejected, ok := u.address(s.api[2].HostPort())
		return ok && strings.Contains(ejected.Text, "recent ejection") &&
			len(u.Addresses) == 3 && slices.Contains(u.Remembered, s.api[3].HostPort()) &&
			strings.Contains(auth.Text, "in a row")
	})

	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page had problems in the browser:\n%s", strings.Join(p, "\n"))
	}

	if os.Getenv("VIGIL_UPDATE_SCREENSHOT") == "1" {
		png := shoot(t, tb)
		if err := os.WriteFile(filepath.FromSlash(screenshotPath), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", screenshotPath, len(png))
	}
}

// shoot takes a screenshot of the page between two reloads: the page's
// time must be the same before and after it.
func shoot(t *testing.T, tb *tab) []byte {
	t.Helper()
	for try := 0; try < 10; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		before, err1 := tb.eval(ctx, `document.readyState === "complete" ? document.body.dataset.generated : ""`)
		png, err2 := tb.screenshot(ctx, 1280)
		after, err3 := tb.eval(ctx, `document.body ? document.body.dataset.generated : ""`)
		cancel()
		if err1 == nil && err2 == nil && err3 == nil && before != "" && before == after {
			return png
		}
	}
	t.Fatal("no screenshot between two reloads in 10 tries")
	return nil
}
