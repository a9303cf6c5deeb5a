package health

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Slow, hung, refusing, resetting, closing and huge-body backends (and bad
// certificates) are classified right.
func TestProbeClassification(t *testing.T) {
	ca := newCA(t, true)
	bs := backends(t, "127.0.8.1", 1, nil)
	tb := backends(t, "127.0.8.2", 1, ca)
	ln, err := backendtest.ListenTCP(mustIP("127.0.8.3"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	refused, err := backendtest.RefusedPort(mustIP("127.0.8.4"))
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := resolver.Address{IP: mustIP("127.0.8.4"), Port: refused, Hostname: "r.test"}

	cases := []struct {
		name   string
		typ    ProbeType
		tls    *tls.Config
		setup  func(b *backendtest.Backend)
		target resolver.Address
		want   outcome
		within time.Duration
	}{
		{"200", HTTP, nil, func(b *backendtest.Backend) { b.SetStatus(200) }, bs[0].Address("h.test"), success, 0},
		{"302 not followed", HTTP, nil, func(b *backendtest.Backend) { b.SetStatus(302) }, bs[0].Address("h.test"), success, 0},
		{"500", HTTP, nil, func(b *backendtest.Backend) { b.SetStatus(500) }, bs[0].Address("h.test"), httpFailure, 0},
		{"404", HTTP, nil, func(b *backendtest.Backend) { b.SetStatus(404) }, bs[0].Address("h.test"), httpFailure, 0},
		{"418 in no list", HTTP, nil, func(b *backendtest.Backend) { b.SetStatus(418) }, bs[0].Address("h.test"), ignored, 0},
		{"hang", HTTP, nil, func(b *backendtest.Backend) { b.SetMode(backendtest.Hang) }, bs[0].Address("h.test"), timeout, 0},
		{"slow beyond timeout", HTTP, nil, func(b *backendtest.Backend) {
			b.SetStatus(200)
			b.SetDelay(time.Second)
			b.SetMode(backendtest.Slow)
		}, bs[0].Address("h.test"), timeout, 0},
		{"slow within timeout", HTTP, nil, func(b *backendtest.Backend) {
			b.SetStatus(200)
			b.SetDelay(20 * time.Millisecond)
			b.SetMode(backendtest.Slow)
		}, bs[0].Address("h.test"), success, 0},
		{"reset", HTTP, nil, func(b *backendtest.Backend) { b.SetMode(backendtest.Reset) }, bs[0].Address("h.test"), tcpFailure, 0},
		{"close", HTTP, nil, func(b *backendtest.Backend) { b.SetMode(backendtest.Close) }, bs[0].Address("h.test"), tcpFailure, 0},
		{"huge body", HTTP, nil, func(b *backendtest.Backend) {
			b.SetStatus(200)
			b.SetMode(backendtest.HugeBody)
		}, bs[0].Address("h.test"), success, 150 * time.Millisecond},
		{"refused", HTTP, nil, nil, refusedAddr, tcpFailure, 0},
		{"https trusted", HTTPS, ca.ClientConfig(), nil, tb[0].Address("s.test"), success, 0},
		{"https untrusted", HTTPS, nil, nil, tb[0].Address("s.test"), tcpFailure, 0},
		{"https verification off", HTTPS, &tls.Config{InsecureSkipVerify: true}, nil, tb[0].Address("s.test"), success, 0},
		{"tcp open", TCP, nil, nil, ln.Address("t.test"), success, 0},
		{"tcp refused", TCP, nil, nil, refusedAddr, tcpFailure, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(bs[0])
			}
			cfg := fast("up8", time.Second)
			cfg.Active.Type = tc.typ
			// Cases that must time out get a short timeout; the others a long
			// one, so that a slow, loaded machine cannot turn them into timeouts.
			cfg.Active.Timeout = 3 * time.Second
			if tc.want == timeout {
				cfg.Active.Timeout = 300 * time.Millisecond
			}
			c := newChecker(t, cfg, nil, nil, WithTLSConfig(tc.tls))
			c.mu.Lock()
			sp := c.spec()
			c.mu.Unlock()
			began := time.Now()
			got := c.run(context.Background(), sp, tc.target)
			took := time.Since(began)
			if got != tc.want {
				t.Fatalf("outcome %v, want %v", got, tc.want)
			}
			if took > sp.timeout+200*time.Millisecond || (tc.within > 0 && took > tc.within+time.Second) {
				t.Fatalf("probe took %v", took)
			}
		})
	}
	bs[0].SetMode(backendtest.Normal)
}

// A probe overrides the port with Active.Port and the Host header and TLS
// server name with Active.Host.
func TestProbeOverrides(t *testing.T) {
	bs := backends(t, "127.0.8.10", 1, nil)
	cfg := fast("up8o", time.Second)
	cfg.Active.Port = bs[0].Port
	cfg.Active.Host = "override.test"
	cfg.Active.Path = "/healthz?deep=1"
	c := newChecker(t, cfg, nil, nil)
	target := resolver.Address{IP: bs[0].IP, Port: 1, Hostname: "traffic.test"} // nothing listens on port 1
	c.mu.Lock()
	sp := c.spec()
	c.mu.Unlock()
	if got := c.run(context.Background(), sp, target); got != success {
		t.Fatalf("outcome %v", got)
	}
	if h := bs[0].Hosts(); h["override.test"] != 1 || len(h) != 1 {
		t.Fatalf("hosts %v", h)
	}
	if p := bs[0].Paths(); p["/healthz?deep=1"] != 1 {
		t.Fatalf("paths %v", p)
	}
}

// Hung and slow backends never stall the probes of other targets.
func TestBadBackendsDoNotStallOthers(t *testing.T) {
	const iv = 25 * time.Millisecond
	bs := backends(t, "127.0.8.20", 6, nil)
	var stuck []resolver.Address
	for i, b := range bs[:4] {
		if i%2 == 0 {
			b.SetMode(backendtest.Hang)
		} else {
			b.SetDelay(time.Hour)
			b.SetMode(backendtest.Slow)
		}
		stuck = append(stuck, b.Address("stuck.test"))
	}
	bs[4].SetMode(backendtest.HugeBody)
	good, huge := bs[5].Address("good.test"), bs[4].Address("huge.test")
	probes := newProbeLog()
	cfg := fast("up8s", iv)
	cfg.Active.Timeout = 400 * time.Millisecond
	c := newChecker(t, cfg, nil, probes.hook, WithMaxProbes(6))
	start(t, c)
	c.SetTargets(append([]resolver.Address{good, huge}, stuck...))
	testutil.Eventually(t, 5*time.Second, "stuck targets to time out", func() bool {
		for _, a := range stuck {
			if tg, _ := c.Target(a); tg.Timeouts < 2 || tg.Status != Unhealthy {
				return false
			}
		}
		return true
	})
	n := len(probes.of(good))
	testutil.Eventually(t, 3*time.Second, "good to be probed 8 times while the others hang",
		func() bool { return len(probes.of(good)) >= n+8 })
	if c.Status(huge) != Healthy || c.Status(good) != Healthy {
		t.Fatalf("good %v, huge %v", c.Status(good), c.Status(huge))
	}
}

func TestStatusDoesNotWaitForProbes(t *testing.T) {
	bs := backends(t, "127.0.8.30", 1, nil)
	bs[0].SetMode(backendtest.Hang)
	cfg := fast("up8w", 10*time.Millisecond)
	cfg.Active.Timeout = 2 * time.Second
	c := newChecker(t, cfg, nil, nil)
	start(t, c)
	a := bs[0].Address("")
	c.SetTargets([]resolver.Address{a})
	testutil.Eventually(t, 2*time.Second, "a probe in flight", func() bool { return c.Stats().InFlight == 1 && bs[0].Requests() == 1 })
	began := time.Now()
	for range 100 {
		_ = c.Status(a)
		_ = c.Targets()
		_ = c.Healthy()
	}
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Fatalf("reads took %v with a probe hanging", d)
	}
}

// A backend that answers with a status line and then sends header lines
// without end makes the probe read without bound until its timeout: the
// body is capped (maxBody) but the response head is not. A probe must read
// a bounded number of bytes from any backend.
func TestEndlessResponseHeadIsBounded(t *testing.T) {
	const limit = 4 * maxBody // generous: a response head is a few KiB
	line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
	cases := []struct {
		name   string
		ip     string
		script func(c net.Conn)
	}{
		{"endless header lines", "127.77.1.1", func(c net.Conn) {
			if !readRequest(c) {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
				return
			}
			for range 1 << 20 { // 1 GiB at most
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}},
		{"endless status line", "127.77.1.2", func(c net.Conn) {
			if !readRequest(c) {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 "); err != nil {
				return
			}
			chunk := []byte(strings.Repeat("O", 32<<10))
			for range 1 << 15 { // 1 GiB at most
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, tc.ip, tc.script)
			cfg := fast("head", time.Second)
			cfg.Active.Timeout = 500 * time.Millisecond
			c := newChecker(t, cfg, nil, nil)
			reads := countReads(c)
			began := time.Now()
			got := probeAndClose(c, srv.addr)
			took := time.Since(began)
			n := reads.read.Load()
			t.Logf("outcome %s (%s) after %v, %d bytes read", outcomeNames[got.o], got.reason, took.Round(time.Millisecond), n)
			if took > cfg.Active.Timeout+300*time.Millisecond {
				t.Errorf("the probe took %v, timeout %v", took, cfg.Active.Timeout)
			}
			if got.o == success {
				t.Errorf("an unterminated response head counted as a success")
			}
			if n > limit {
				t.Errorf("the probe read %d bytes of a response head, want at most %d", n, limit)
			}
		})
	}
}

// An interim 1xx response (103 Early Hints, 100 Continue) before the final
// one is not the probe's answer (RFC 9110 15.2: a client must parse and
// skip 1xx responses it did not expect): the final status decides.
func TestInterimResponsesAreSkipped(t *testing.T) {
	cases := []struct {
		name    string
		ip      string
		interim string
		final   int
		want    outcome
	}{
		{"103 then 500", "127.77.2.1", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 500, httpFailure},
		{"100 then 503", "127.77.2.2", "HTTP/1.1 100 Continue\r\n\r\n", 503, httpFailure},
		{"103 then 200", "127.77.2.3", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 200, success},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, tc.ip, func(c net.Conn) {
				if !readRequest(c) {
					return
				}
				_, _ = io.WriteString(c, tc.interim+"HTTP/1.1 "+strconv.Itoa(tc.final)+" "+http.StatusText(tc.final)+
					"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				waitClosed(c)
			})
			cfg := fast("1xx", time.Second)
			cfg.Active.Timeout = 2 * time.Second
			c := newChecker(t, cfg, nil, nil)
			got := probeAndClose(c, srv.addr)
			if got.o != tc.want || got.code != tc.final {
				t.Fatalf("outcome %s, code %d (%s); want %s, code %d", outcomeNames[got.o], got.code, got.reason,
					outcomeNames[tc.want], tc.final)
			}
		})
	}
}

// An HTTPS probe of a plain HTTP port and an HTTP probe of a TLS port are
// classified within the timeout, never as a success; the connection is
// closed after each.
func TestWrongSchemeProbes(t *testing.T) {
	ca := newCA(t, true)
	plain := backends(t, "127.77.3.1", 1, nil)[0]
	secure := backends(t, "127.77.3.2", 1, ca)[0]
	for _, tc := range []struct {
		name   string
		typ    ProbeType
		target *backendtest.Backend
	}{
		{"https to a plain port", HTTPS, plain},
		{"http to a TLS port", HTTP, secure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fast("scheme", time.Second)
			cfg.Active.Type = tc.typ
			cfg.Active.Timeout = 500 * time.Millisecond
			c := newChecker(t, cfg, nil, nil, WithTLSConfig(ca.ClientConfig()))
			reads := countReads(c)
			before := tc.target.Conns()
			began := time.Now()
			got := probeAndClose(c, tc.target.Address("w.test"))
			took := time.Since(began)
			t.Logf("outcome %s (%s), code %d, after %v, %d bytes read", outcomeNames[got.o], got.reason, got.code,
				took.Round(time.Millisecond), reads.read.Load())
			if got.o == success {
				t.Fatalf("a probe with the wrong scheme passed")
			}
			if took > cfg.Active.Timeout+300*time.Millisecond {
				t.Fatalf("the probe took %v, timeout %v", took, cfg.Active.Timeout)
			}
			if n := reads.read.Load(); n > 16<<10 {
				t.Fatalf("read %d bytes", n)
			}
			if n := tc.target.Conns() - before; n != 1 {
				t.Fatalf("%d connections for one probe", n)
			}
		})
	}
}

// zonedBackends starts an HTTP and an HTTPS backend on ::1, or skips.
func zonedBackends(t *testing.T, ca *backendtest.CA) (plain, secure *backendtest.Backend) {
	t.Helper()
	lo := netip.MustParseAddr("::1")
	plain, err := backendtest.Start(lo, 0, nil)
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	secure, err = backendtest.Start(lo, 0, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = secure.Close() })
	return plain, secure
}

// zoned returns b's address with the zone "lo" and no hostname.
func zoned(b *backendtest.Backend) resolver.Address {
	return resolver.Address{IP: b.IP.WithZone("lo"), Port: b.Port}
}

// A zoned IPv6 loopback target ("::1%lo") is probed at that zone by HTTP
// and TCP probes; the Host header carries no zone.
func TestZonedIPv6(t *testing.T) {
	plain, _ := zonedBackends(t, nil)
	for _, typ := range []ProbeType{HTTP, TCP} {
		cfg := fast("zone", time.Second)
		cfg.Active.Type = typ
		cfg.Active.Timeout = 3 * time.Second
		c := newChecker(t, cfg, nil, nil)
		if got := probeAndClose(c, zoned(plain)); got.o != success {
			t.Fatalf("%v probe of %v: %s (%s)", typ, zoned(plain), outcomeNames[got.o], got.reason)
		}
	}
	want := "[::1]:" + strconv.Itoa(int(plain.Port))
	if h := plain.Hosts(); len(h) != 1 || h[want] != 1 {
		t.Errorf("Host headers %v, want one %q", h, want)
	}
}

// An HTTPS probe of a zoned IPv6 target without a hostname checks the
// certificate for the IP, as for any IP target: the zone is no part of the
// server name (it is "::1%lo" today, so the probe fails verification).
func TestZonedIPv6HTTPS(t *testing.T) {
	ca := newCA(t, true)
	_, secure := zonedBackends(t, ca)
	cfg := fast("zone-tls", time.Second)
	cfg.Active.Type = HTTPS
	cfg.Active.Timeout = 3 * time.Second
	c := newChecker(t, cfg, nil, nil, WithTLSConfig(ca.ClientConfig()))
	if got := probeAndClose(c, zoned(secure)); got.o != success {
		t.Fatalf("HTTPS probe of %v: %s (%s)", zoned(secure), outcomeNames[got.o], got.reason)
	}
	if want := "[::1]:" + strconv.Itoa(int(secure.Port)); secure.Hosts()[want] != 1 {
		t.Errorf("Host headers %v, want %q", secure.Hosts(), want)
	}
	if s := secure.SNIs(); len(s) != 1 || s[""] != 1 {
		// No server name for an IP target: the certificate is checked for the IP.
		t.Errorf("server names %v, want none", s)
	}
}

// A probe's errors are classified by their kind, never by the zone or
// address text they carry.
func TestRefusedZonedIPv6(t *testing.T) {
	port, err := backendtest.RefusedPort(netip.MustParseAddr("::1"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	cfg := fast("zone-refused", time.Second)
	c := newChecker(t, cfg, nil, nil)
	got := probeAndClose(c, resolver.Address{IP: netip.MustParseAddr("::1%lo"), Port: port})
	if got.o != tcpFailure || got.reason != "connection refused" {
		t.Fatalf("outcome %s (%q), want a TCP failure \"connection refused\"", outcomeNames[got.o], got.reason)
	}
}

// A probe's Host header is the probed authority (RFC 9110, 7.2): the
// target's hostname with the port when it is not the scheme's default. An
// Active.Host override is sent as given.
func TestProbeHostHeaderCarriesThePort(t *testing.T) {
	bs := backends(t, "127.0.8.20", 1, nil)
	c := newChecker(t, fast("up8h", time.Second), nil, nil)
	c.mu.Lock()
	sp := c.spec()
	c.mu.Unlock()
	if got := c.run(context.Background(), sp, bs[0].Address("port.test")); got != success {
		t.Fatalf("outcome %v", got)
	}
	want := "port.test:" + strconv.Itoa(int(bs[0].Port))
	if h := bs[0].Hosts(); h[want] != 1 || len(h) != 1 {
		t.Fatalf("Host headers %v, want %q", h, want)
	}
	for _, tc := range []struct {
		port uint16
		typ  ProbeType
		want string
	}{
		{80, HTTP, "d.test"}, {443, HTTPS, "d.test"}, {443, HTTP, "d.test:443"}, {8080, HTTPS, "d.test:8080"},
	} {
		sp := spec{typ: tc.typ, path: "/"}
		req, err := probeRequest(context.Background(), sp, resolver.Address{IP: bs[0].IP, Port: tc.port, Hostname: "d.test."})
		if err != nil {
			t.Fatal(err)
		}
		if req.Host != tc.want {
			t.Errorf("%v to port %d: Host %q, want %q", tc.typ, tc.port, req.Host, tc.want)
		}
	}
}
