package health

import (
	"context"
	"crypto/tls"
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
	time.Sleep(20 * iv)
	if got := len(probes.of(good)) - n; got < 8 {
		t.Fatalf("good was probed %d times in %v while others hung", got, 20*iv)
	}
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
