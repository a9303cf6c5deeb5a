package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// rawServer accepts TCP connections on a loopback address and hands each to
// a script that writes whatever bytes it likes; it counts the connections
// it accepted and those still open.
type rawServer struct {
	ln       net.Listener
	addr     resolver.Address
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	open  map[net.Conn]struct{}
	done  bool
	peaks int // the most connections open at once
}

func startRaw(t *testing.T, ip string, script func(c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, open: make(map[net.Conn]struct{})}
	s.addr = resolver.Address{IP: mustIP(ip), Port: uint16(ln.Addr().(*net.TCPAddr).Port), Hostname: "raw.test"}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				_ = c.Close()
				return
			}
			s.open[c] = struct{}{}
			s.peaks = max(s.peaks, len(s.open))
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					_ = c.Close()
					s.mu.Lock()
					delete(s.open, c)
					s.mu.Unlock()
				}()
				script(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		s.done = true
		for c := range s.open {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// openConns returns how many accepted connections the script still holds.
func (s *rawServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// readRequest reads one request's head from c; false when none came.
func readRequest(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := http.ReadRequest(bufio.NewReader(c))
	_ = c.SetReadDeadline(time.Time{})
	return err == nil
}

// waitClosed reads from c until the peer closes it (or 5s pass).
func waitClosed(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

// probeSpec returns c's probe settings.
func probeSpec(c *Checker) spec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spec()
}

// A backend that answers with a status line and then sends header lines
// without end makes the probe read without bound until its timeout: the
// body is capped (maxBody) but the response head is not. A probe must read
// a bounded number of bytes from any backend.
func TestReviewEndlessResponseHeadIsBounded(t *testing.T) {
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
			cfg := fast("review-head", time.Second)
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
func TestReviewInterimResponsesAreSkipped(t *testing.T) {
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
			cfg := fast("review-1xx", time.Second)
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
func TestReviewWrongSchemeProbes(t *testing.T) {
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
			cfg := fast("review-scheme", time.Second)
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

// A probe's connection is kept for the target's next probe only when the
// whole answer was read and keep-alive was offered; whatever else the
// backend did, it is closed when the probe ends: counted at the server,
// which sees each connection end.
func TestReviewProbeConnectionsAreClosed(t *testing.T) {
	ca := newCA(t, true)
	answer := func(status string) func(c net.Conn) {
		return func(c net.Conn) {
			// Keep-alive offered: every request on the connection is
			// answered, until the prober closes it.
			for readRequest(c) {
				if _, err := io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"); err != nil {
					return
				}
			}
		}
	}
	hang := func(c net.Conn) {
		if readRequest(c) {
			waitClosed(c)
		}
	}
	trickle := func(c net.Conn) {
		if !readRequest(c) {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"); err != nil {
			return
		}
		for range 200 {
			if _, err := c.Write([]byte{'.'}); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tlsAnswer := func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := ca.Issue([]string{h.ServerName}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			return cert, err
		}})
		if tc.HandshakeContext(context.Background()) != nil {
			return
		}
		answer("200 OK")(tc)
	}
	tlsHang := func(c net.Conn) { // accepts, never says a word of TLS
		waitClosed(c)
	}
	endless := func(c net.Conn) { // a chunked body without end
		if !readRequest(c) {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			return
		}
		chunk := []byte("8000\r\n" + strings.Repeat("x", 0x8000) + "\r\n")
		for range 1 << 15 { // 1 GiB at most
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	reset := func(c net.Conn) { // reads the request, then resets
		if readRequest(c) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
	}
	cases := []struct {
		name    string
		ip      string
		typ     ProbeType
		script  func(net.Conn)
		want    outcome
		trusted bool // the checker trusts the test CA
		kept    bool // the connection carries every probe
	}{
		{"200 with keep-alive", "127.77.4.1", HTTP, answer("200 OK"), success, true, true},
		{"500 with keep-alive", "127.77.4.2", HTTP, answer("500 Internal Server Error"), httpFailure, true, true},
		{"hangs", "127.77.4.3", HTTP, hang, timeout, true, false},
		{"trickles", "127.77.4.4", HTTP, trickle, success, true, false},
		{"https 200 with keep-alive", "127.77.4.5", HTTPS, tlsAnswer, success, true, true},
		{"tcp connect", "127.77.4.6", TCP, hang, success, true, false},
		{"https with an untrusted certificate", "127.77.4.7", HTTPS, tlsAnswer, tcpFailure, false, false},
		{"https to a plain HTTP port", "127.77.4.8", HTTPS, answer("200 OK"), tcpFailure, true, false},
		{"https to a silent port", "127.77.4.9", HTTPS, tlsHang, timeout, true, false},
		{"endless chunked body", "127.77.4.10", HTTP, endless, success, true, false},
		{"reset after the request", "127.77.4.11", HTTP, reset, tcpFailure, true, false},
	}
	const probes = 5
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, tc.ip, tc.script)
			cfg := fast("review-close", time.Second)
			cfg.Active.Type = tc.typ
			cfg.Active.Timeout = 300 * time.Millisecond
			tlsc := ca.ClientConfig()
			if !tc.trusted {
				tlsc = &tls.Config{RootCAs: x509.NewCertPool()}
			}
			c := newChecker(t, cfg, nil, nil, WithTLSConfig(tlsc))
			var kept *probeConn
			for i := range probes {
				got := c.runProbe(context.Background(), probeSpec(c), srv.addr, kept)
				kept = got.conn
				if got.o != tc.want {
					t.Fatalf("probe %d: outcome %s (%s), want %s", i, outcomeNames[got.o], got.reason, outcomeNames[tc.want])
				}
				if (kept != nil) != tc.kept {
					t.Fatalf("probe %d: connection kept %v, want %v", i, kept != nil, tc.kept)
				}
				if !tc.kept {
					testutil.Eventually(t, 2*time.Second, "the probe's connection to be closed", func() bool {
						return srv.openConns() == 0
					})
				}
			}
			want := int64(probes)
			if tc.kept {
				want = 1
			}
			// A TCP probe is done once connected; the server may accept later.
			testutil.Eventually(t, 2*time.Second, "the server to accept every connection", func() bool {
				return srv.accepted.Load() >= want
			})
			if n := srv.accepted.Load(); n != want {
				t.Fatalf("%d connections for %d probes, want %d", n, probes, want)
			}
			closeConn(kept)
			testutil.Eventually(t, 2*time.Second, "every connection closed", func() bool { return srv.openConns() == 0 })
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
func TestReviewZonedIPv6(t *testing.T) {
	plain, _ := zonedBackends(t, nil)
	for _, typ := range []ProbeType{HTTP, TCP} {
		cfg := fast("review-zone", time.Second)
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
func TestReviewZonedIPv6HTTPS(t *testing.T) {
	ca := newCA(t, true)
	_, secure := zonedBackends(t, ca)
	cfg := fast("review-zone-tls", time.Second)
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
func TestReviewRefusedZonedIPv6(t *testing.T) {
	port, err := backendtest.RefusedPort(netip.MustParseAddr("::1"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	cfg := fast("review-zone-refused", time.Second)
	c := newChecker(t, cfg, nil, nil)
	got := probeAndClose(c, resolver.Address{IP: netip.MustParseAddr("::1%lo"), Port: port})
	if got.o != tcpFailure || got.reason != "connection refused" {
		t.Fatalf("outcome %s (%q), want a TCP failure \"connection refused\"", outcomeNames[got.o], got.reason)
	}
}

// Stopping Run cuts the probes in flight at once, long before their
// timeout, and their connections are closed: a hung backend holds no
// connection of a stopped checker.
func TestReviewRunStopCutsHungProbes(t *testing.T) {
	var srvs []*rawServer
	var as []resolver.Address
	for i := range 3 {
		s := startRaw(t, "127.77.5."+strconv.Itoa(i+1), func(c net.Conn) {
			if readRequest(c) {
				waitClosed(c)
			}
		})
		srvs = append(srvs, s)
		as = append(as, s.addr)
	}
	cfg := fast("review-stop", time.Second)
	cfg.Active.Timeout = 20 * time.Second
	c := newChecker(t, cfg, nil, nil)
	c.SetTargets(as)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	testutil.Eventually(t, 3*time.Second, "every probe to hang", func() bool {
		for _, s := range srvs {
			if s.openConns() != 1 {
				return false
			}
		}
		return c.Stats().InFlight == len(as)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of its context's end while probes hung (timeout 20s)")
	}
	if n := c.Stats().InFlight; n != 0 {
		t.Fatalf("%d probes in flight after Run returned", n)
	}
	testutil.Eventually(t, 2*time.Second, "the hung probes' connections to be closed", func() bool {
		for _, s := range srvs {
			if s.openConns() != 0 {
				return false
			}
		}
		return true
	})
}

// probeAndClose runs one probe of a and closes the connection it kept.
func probeAndClose(c *Checker, a resolver.Address) probed {
	res := c.runProbe(context.Background(), probeSpec(c), a, nil)
	closeConn(res.conn)
	return res
}
