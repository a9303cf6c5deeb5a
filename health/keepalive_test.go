package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A target's probes reuse one connection; it is closed at once when the
// target is removed, when the probe settings change, and when Run ends.
func TestProbeConnectionKeptAndClosed(t *testing.T) {
	bs := backends(t, "127.0.76.1", 2, nil)
	a, b := bs[0].Address("keep.test"), bs[1].Address("keep.test")
	c := newChecker(t, fast("keep", 10*time.Millisecond), nil, nil)
	c.SetTargets([]resolver.Address{a, b})
	stop := startStoppable(t, c)
	testutil.Eventually(t, 3*time.Second, "ten probes of each", func() bool {
		return bs[0].Requests() >= 10 && bs[1].Requests() >= 10
	})
	if n := bs[0].Conns(); n != 1 {
		t.Fatalf("%d connections for %d probes, want one kept", n, bs[0].Requests())
	}
	c.SetTargets([]resolver.Address{b})
	testutil.Eventually(t, 3*time.Second, "the removed target's connection to close", func() bool { return bs[0].OpenConns() == 0 })

	upd := c.Config()
	upd.Active.Path = "/other"
	if err := c.Update(upd); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "a probe with the new path", func() bool { return bs[1].Paths()["/other"] > 0 })
	if n := bs[1].Conns(); n != 2 {
		t.Fatalf("%d connections to the kept target, want 2: one per probe settings", n)
	}
	stop()
	testutil.Eventually(t, 3*time.Second, "Run's end to close the connection", func() bool { return bs[1].OpenConns() == 0 })
}

// A kept connection that the server closed while it idled is found at the
// next probe, which is sent again on a new connection: no failure counts.
func TestStaleKeptConnectionIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.76.10:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			// One answer that allows keep-alive, then the server closes the
			// connection, as an idle timeout would.
			r := bufio.NewReader(conn)
			if req, err := http.ReadRequest(r); err == nil {
				_ = req.Body.Close()
				_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			}
			_ = conn.Close()
		}
	}()
	defer func() { _ = ln.Close(); <-done }()
	tcp := ln.Addr().(*net.TCPAddr)
	a := resolver.Address{IP: mustIP("127.0.76.10"), Port: uint16(tcp.Port)}
	cfg := fast("stale", 20*time.Millisecond)
	cfg.Active.Unhealthy.TCPFailures = 1 // one counted failure would show
	c := newChecker(t, cfg, nil, nil)
	c.SetTargets([]resolver.Address{a})
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "five probes", func() bool { return c.Stats().ProbesCompleted >= 5 })
	tg, _ := c.Target(a)
	if tg.Status != Healthy || tg.TCPFailures != 0 {
		t.Fatalf("after probes on connections the server closed: %+v", tg)
	}
	if n := accepted.Load(); n < 5 {
		t.Fatalf("%d connections accepted for 5 probes", n)
	}
}

// A probe's connection is kept for the target's next probe only when the
// whole answer was read and keep-alive was offered; whatever else the
// backend did, it is closed when the probe ends: counted at the server,
// which sees each connection end.
func TestProbeConnectionsAreClosed(t *testing.T) {
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
			cfg := fast("close", time.Second)
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
