package vigil_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/internal/urlport"
	"github.com/vigil-go/vigil/resolver"
)

// FuzzClientRouting sends requests for hostile URLs (host names, ports,
// URL forms) through a Client with one upstream and a template restricted
// by Hosts, and checks where each went: the upstream's backend gets only
// requests for its name and port; the base gets none of them, and none for
// a name the template serves; nothing panics or hangs.
func FuzzClientRouting(f *testing.F) {
	for _, s := range []string{
		"http://api.fuzz.test:%P/x",
		"http://API.Fuzz.Test.:%P/",
		"http://api.fuzz.test/",
		"http://api.fuzz.test:0/",
		"http://api.fuzz.test:99999/",
		"http://api.fuzz.test:+80/",
		"http://[::1]:%P/",
		"http://127.0.0.1:%P/",
		"http://a.tmpl.test/",
		"https://a.tmpl.test:8443/",
		"http://a.tmpl.test:%P/",
		"http://other.example/",
		"http://%61pi.fuzz.test:%P/",
		"http://api.fuzz.test%2e:%P/",
		"http://user:pass@api.fuzz.test:%P/",
		"ftp://api.fuzz.test:%P/",
		"http://api..fuzz.test:%P/",
		"http://" + strings.Repeat("a", 300) + ".tmpl.test/",
		"http://[fe80::1%25eth0]:80/",
		"http:///path",
		"//api.fuzz.test:%P/",
	} {
		f.Add(s)
	}

	d := dnsServer(f)
	be := backends(f, "127.0.91.1", 1)[0]
	if err := d.SetA("api.fuzz.test", 60, be.IP.String()); err != nil {
		f.Fatal(err)
	}
	base := &answeringBase{}
	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{{Name: "api.fuzz.test", Port: be.Port}},
		Defaults:  vigil.Config{Resolver: resolver.Config{Servers: []string{d.Addr()}}},
		Template:  &vigil.Config{},
		Hosts:     func(h string) bool { return strings.HasSuffix(h, ".tmpl.test") },
		Base:      base,
		// Few template upstreams at once, stopped soon: the fuzzer makes many.
		MaxTemplateUpstreams: 4,
		IdleTimeout:          100 * time.Millisecond,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	port := strconv.Itoa(int(be.Port))

	f.Fuzz(func(t *testing.T, raw string) {
		raw = strings.ReplaceAll(raw, "%P", port)
		req, err := http.NewRequest(http.MethodGet, raw, nil)
		if err != nil {
			return
		}
		want := expectRoute(req.URL, be.Port)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		beBefore, baseBefore := be.Requests(), len(base.asked())
		resp, err := c.Do(req.WithContext(ctx))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		if ctx.Err() != nil {
			t.Fatalf("%q: the request hung until its deadline (err %v)", raw, err)
		}
		toBackend := be.Requests() > beBefore
		toBase := len(base.asked()) > baseBefore
		switch {
		case toBackend && want != routeUpstream:
			t.Fatalf("%q reached the upstream's backend; want %v", raw, want)
		case toBase && want != routeBase:
			t.Fatalf("%q went to the base; want %v", raw, want)
		case want == routeUpstream && err != nil && !toBackend:
			t.Fatalf("%q: the upstream's request failed: %v", raw, err)
		}
	})
}

type route int

const (
	routeBase     route = iota
	routeUpstream       // the configured upstream's backend
	routeTemplate       // an upstream made from the template, or an upstream's error
)

func (r route) String() string {
	return [...]string{"base", "the upstream", "a template upstream"}[r]
}

// expectRoute is where a request for u must go: its host normalized as
// every package normalizes names, its port explicit or the scheme's.
func expectRoute(u *url.URL, port uint16) route {
	host := resolver.NormalizeName(u.Hostname())
	if host == "" {
		return routeBase
	}
	if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		return routeBase
	}
	p, ok := urlport.Of(u)
	switch {
	case host == "api.fuzz.test" && ok && p == port:
		if u.Scheme != "http" {
			return routeTemplate // the upstream's, which speaks only HTTP here: an error
		}
		return routeUpstream
	case strings.HasSuffix(host, ".tmpl.test"):
		return routeTemplate
	}
	return routeBase
}
