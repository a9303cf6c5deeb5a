package balancer

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// hostRig is an upstream "shop.example" of one loopback server, and another
// loopback server that a fallback transport reaches whatever host a
// request names.
type hostRig struct {
	be, other *server
	checker   *health.Checker
	fallback  *http.Transport
}

func newHostRig(t *testing.T, first string, h http.HandlerFunc) *hostRig {
	t.Helper()
	ip := net.ParseIP(first).To4()
	r := &hostRig{be: startServer(t, first, h)}
	ip[3]++
	r.other = startServer(t, ip.String(), nil)
	c, err := health.NewChecker(passiveConfig("shop.example"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets([]resolver.Address{r.be.address("shop.example")})
	r.checker = c
	otherAddr := net.JoinHostPort(r.other.IP.String(), strconv.Itoa(int(r.other.Port)))
	r.fallback = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, otherAddr)
	}}
	t.Cleanup(r.fallback.CloseIdleConnections)
	return r
}

func (r *hostRig) client(t *testing.T, opts ...TransportOption) *http.Client {
	t.Helper()
	tr := NewTransport(New(r.checker), nil, append([]TransportOption{WithFallback(r.fallback)}, opts...)...)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// A backend's redirect to another host is followed through the fallback:
// that host's server gets it, with its own Host header, and the upstream's
// backend gets only the request for its own name.
func TestTransportRedirectToOtherHostGoesToFallback(t *testing.T) {
	r := newHostRig(t, "127.0.74.1", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "http://login.other.example:9999/welcome", http.StatusFound)
	})
	client := r.client(t)
	code, err := get(client, r.be.url("shop.example", "/account"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d, %v", code, err)
	}
	want := "shop.example:" + strconv.Itoa(int(r.be.Port))
	if got := r.be.requests(); !slices.Equal(got, []string{want}) {
		t.Errorf("the upstream's backend received Host headers %q, want only %q", got, want)
	}
	if got := r.other.requests(); !slices.Equal(got, []string{"login.other.example:9999"}) {
		t.Errorf("the other host's server received %q, want the redirect", got)
	}
}

// The hostname is compared normalized; another port goes to the fallback
// under WithPort and to the upstream without it.
func TestTransportHostAndPort(t *testing.T) {
	r := newHostRig(t, "127.0.74.11", nil)
	own := strconv.Itoa(int(r.be.Port))
	otherPort := strconv.Itoa(int(r.be.Port) + 1)
	tests := []struct {
		name     string
		opts     []TransportOption
		url      string
		upstream bool
	}{
		{"own host and port", []TransportOption{WithPort(r.be.Port)}, "http://shop.example:" + own + "/", true},
		{"case and trailing dot", []TransportOption{WithPort(r.be.Port)}, "http://SHOP.Example.:" + own + "/", true},
		{"another port", []TransportOption{WithPort(r.be.Port)}, "http://shop.example:" + otherPort + "/", false},
		{"another port, no WithPort", nil, "http://shop.example:" + otherPort + "/", true},
		{"another host", nil, "http://shop.example.org:" + own + "/", false},
		{"a sub-domain", nil, "http://www.shop.example:" + own + "/", false},
		{"an address literal", nil, "http://" + r.be.IP.String() + ":" + own + "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := r.client(t, tt.opts...)
			be, other := len(r.be.requests()), len(r.other.requests())
			if code, err := get(client, tt.url); err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d, %v", tt.url, code, err)
			}
			gotBe, gotOther := len(r.be.requests())-be, len(r.other.requests())-other
			if tt.upstream && (gotBe != 1 || gotOther != 0) {
				t.Errorf("%s reached the backend %d and the fallback %d times, want the upstream's backend", tt.url, gotBe, gotOther)
			}
			if !tt.upstream && (gotBe != 0 || gotOther != 1) {
				t.Errorf("%s reached the backend %d and the fallback %d times, want the fallback", tt.url, gotBe, gotOther)
			}
		})
	}
}

// The port rule uses the scheme's default port when the URL has none.
func TestTransportTakes(t *testing.T) {
	c := newChecker(t)
	tests := []struct {
		port int // 0: no WithPort
		url  string
		want bool
	}{
		{0, "http://api/", true},
		{0, "https://API.:8443/x", true},
		{80, "http://api/", true},
		{80, "https://api/", false},
		{443, "https://api/", true},
		{443, "https://api:443/", true},
		{80, "ftp://api/", false},
		{8080, "http://api:8080/", true},
		{8080, "http://api:80800/", false},
		{0, "http://api.example/", false},
		{0, "http:///path", false},
	}
	for _, tt := range tests {
		var opts []TransportOption
		if tt.port != 0 {
			opts = append(opts, WithPort(uint16(tt.port)))
		}
		tr := NewTransport(New(c), nil, opts...)
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Serves(u); got != tt.want {
			t.Errorf("WithPort %d, %s: takes = %v, want %v", tt.port, tt.url, got, tt.want)
		}
	}
}
