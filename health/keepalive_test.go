package health

import (
	"bufio"
	"context"
	"net"
	"net/http"
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

// startStoppable runs c until stop is called (or the test ends).
func startStoppable(t *testing.T, c *Checker) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- c.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
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
