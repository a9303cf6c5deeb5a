package health

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/resolver"
)

// hostile is one misbehaving backend, the probe type aimed at it and the
// outcome the documentation promises.
type hostile struct {
	name   string
	typ    ProbeType
	target resolver.Address
	want   outcome
	// maxRead bounds the bytes a probe may read from it; 0: no body.
	maxRead int64
	// backend, if not nil, must have received exactly requests requests.
	backend  *backendtest.Backend
	requests int64
}

// hostileBackends starts one backend per hostile case on 127.0.20.X.
// Resetting and closing after the request was read, hanging, slow answers,
// huge bodies, refused connections and certificates of an unknown CA are
// rows of TestProbeClassification; these are the other ways a backend can
// misbehave.
func hostileBackends(t *testing.T, ca *backendtest.CA) []hostile {
	t.Helper()
	ip := mustIP("127.0.20.1")
	next := func() resolver.Address {
		a := resolver.Address{IP: ip}
		ip = ip.Next()
		return a
	}
	listen := func(mode backendtest.TCPMode) resolver.Address {
		a := next()
		l, err := backendtest.ListenTCPMode(a.IP, 0, mode)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l.Address("hostile.test")
	}
	serve := func(mode backendtest.Mode, status int) *backendtest.Backend {
		b, err := backendtest.Start(next().IP, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		b.SetStatus(status)
		b.SetMode(mode)
		return b
	}
	serveCert := func(names []string, from, until time.Time) resolver.Address {
		cert, err := ca.Issue(names, from, until)
		if err != nil {
			t.Fatal(err)
		}
		b, err := backendtest.StartTLS(next().IP, 0, cert)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b.Address("s.test")
	}
	now := time.Now()
	silent, reset, closing := listen(backendtest.Silent), listen(backendtest.ResetAtOnce), listen(backendtest.CloseAtOnce)
	trickleOK, trickleBad := serve(backendtest.Trickle, 200), serve(backendtest.Trickle, 500)
	endless := serve(backendtest.Endless, 200)
	loop302, loop307 := serve(backendtest.Redirect, 302), serve(backendtest.Redirect, 307)
	return []hostile{
		{name: "accepts, never answers (http)", typ: HTTP, target: silent, want: timeout},
		{name: "accepts, never answers (https)", typ: HTTPS, target: silent, want: timeout},
		{name: "accepts, never answers (tcp)", typ: TCP, target: silent, want: success},
		{name: "resets at accept", typ: HTTP, target: reset, want: tcpFailure},
		{name: "closes at accept", typ: HTTP, target: closing, want: tcpFailure},
		{name: "trickles the body of a 200", typ: HTTP, target: trickleOK.Address("t.test"), want: success,
			maxRead: 16 << 10, backend: trickleOK, requests: 1},
		{name: "trickles the body of a 500", typ: HTTP, target: trickleBad.Address("t.test"), want: httpFailure,
			maxRead: 16 << 10, backend: trickleBad, requests: 1},
		{name: "endless 1 GiB body", typ: HTTP, target: endless.Address("e.test"), want: success,
			maxRead: maxBody + 64<<10, backend: endless, requests: 1},
		{name: "302 to itself", typ: HTTP, target: loop302.Address("r.test"), want: success,
			maxRead: 16 << 10, backend: loop302, requests: 1},
		{name: "307 to itself", typ: HTTP, target: loop307.Address("r.test"), want: ignored,
			maxRead: 16 << 10, backend: loop307, requests: 1},
		{name: "certificate for another name", typ: HTTPS,
			target: serveCert([]string{"other.test"}, now.Add(-time.Hour), now.Add(time.Hour)), want: tcpFailure},
		{name: "expired certificate", typ: HTTPS,
			target: serveCert([]string{"s.test"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), want: tcpFailure},
		{name: "certificate not yet valid", typ: HTTPS,
			target: serveCert([]string{"s.test"}, now.Add(24*time.Hour), now.Add(48*time.Hour)), want: tcpFailure},
	}
}

// Each hostile backend is classified as documented (a timeout, a TCP
// failure, or by its status code) within the probe's timeout, and a probe
// reads a bounded number of bytes from it.
func TestHostileBackends(t *testing.T) {
	const (
		probeTimeout = 300 * time.Millisecond
		margin       = 200 * time.Millisecond // -race on a busy machine
	)
	ca := newCA(t, true)
	for _, h := range hostileBackends(t, ca) {
		t.Run(h.name, func(t *testing.T) {
			cfg := fast("up20", time.Second)
			cfg.Active.Type = h.typ
			cfg.Active.Timeout = probeTimeout
			c := newChecker(t, cfg, nil, nil, WithTLSConfig(ca.ClientConfig()))
			reads := countReads(c)
			c.mu.Lock()
			sp := c.spec()
			c.mu.Unlock()
			began := time.Now()
			got := c.run(context.Background(), sp, h.target)
			took := time.Since(began)
			n := reads.read.Load()
			sent := int64(0)
			if h.backend != nil {
				sent = h.backend.BytesSent()
			}
			t.Logf("%s after %v, %d bytes read, %d body bytes sent", outcomeNames[got], took.Round(time.Millisecond), n, sent)
			if got != h.want {
				t.Fatalf("outcome %s, want %s", outcomeNames[got], outcomeNames[h.want])
			}
			if took > probeTimeout+margin {
				t.Fatalf("probe took %v, timeout %v", took, probeTimeout)
			}
			if h.want == timeout && took < probeTimeout-10*time.Millisecond {
				t.Fatalf("timed out after %v, before the timeout %v", took, probeTimeout)
			}
			if h.maxRead > 0 && n > h.maxRead {
				t.Fatalf("read %d bytes, at most %d expected", n, h.maxRead)
			}
			if h.backend != nil {
				if r := h.backend.Requests(); r != h.requests {
					t.Fatalf("backend got %d requests, want %d", r, h.requests)
				}
				if sent >= backendtest.EndlessBodySize/16 {
					t.Fatalf("backend sent %d bytes", sent)
				}
			}
		})
	}
}

// With every hostile backend a target of one checker, a healthy target's
// probes keep their interval (no gap beyond the interval, its jitter and
// scheduling slack), and each hostile target ends with the status its
// outcome leads to.
func TestHostileBackendsDoNotDelayOthers(t *testing.T) {
	const (
		iv    = 100 * time.Millisecond
		run   = 2 * time.Second
		slack = 150 * time.Millisecond // scheduling delay tolerated under -race on a busy machine
	)
	ca := newCA(t, true)
	hs := hostileBackends(t, ca)
	good := backends(t, "127.0.20.100", 1, nil)[0].Address("good.test")
	probes := newProbeLog()

	// One checker per probe type, all running at once, each with the
	// healthy target among its hostile ones.
	byType := map[ProbeType][]hostile{}
	for _, h := range hs {
		byType[h.typ] = append(byType[h.typ], h)
	}
	checkers := map[ProbeType]*Checker{}
	var readers []*countingDialer
	for typ, list := range byType {
		cfg := fast("up20c"+typ.String(), iv)
		cfg.Active.Unhealthy.Interval = 2 * iv // failing targets: less CPU for TLS handshakes under -race
		cfg.Active.Type = typ
		cfg.Active.Timeout = 300 * time.Millisecond
		var hook func(*target)
		if typ == HTTP {
			hook = probes.hook
		}
		c := newChecker(t, cfg, nil, hook, WithTLSConfig(ca.ClientConfig()))
		readers = append(readers, countReads(c))
		set := []resolver.Address{}
		for _, h := range list {
			set = append(set, h.target)
		}
		if typ == HTTP {
			set = append(set, good)
		}
		c.SetTargets(set)
		checkers[typ] = c
	}
	began := time.Now()
	for _, c := range checkers {
		start(t, c)
	}
	time.Sleep(run)
	ended := time.Now()

	starts := probes.of(good)
	if len(starts) < int(run/iv)/2 {
		t.Fatalf("good was probed %d times in %v", len(starts), run)
	}
	maxGap := time.Duration(0)
	for i := 1; i < len(starts); i++ {
		if starts[i].After(ended) {
			break
		}
		maxGap = max(maxGap, starts[i].Sub(starts[i-1]))
	}
	if first := starts[0].Sub(began); first > slack {
		t.Fatalf("good's first probe came %v after the start", first)
	}
	var read int64
	for _, r := range readers {
		read += r.read.Load()
	}
	var stats Stats
	for _, c := range checkers {
		s := c.Stats()
		stats.ProbesStarted += s.ProbesStarted
	}
	t.Logf("good: %d probes in %v, largest gap %v; %d probes in all, %d bytes read",
		len(starts), run, maxGap, stats.ProbesStarted, read)
	if maxGap > iv*105/100+slack {
		t.Fatalf("good's probes had a gap of %v (interval %v)", maxGap, iv)
	}
	if per := read / int64(max(stats.ProbesStarted, 1)); per > maxBody+64<<10 {
		t.Fatalf("%d bytes read per probe", per)
	}
	for _, h := range hs {
		want := Healthy
		if h.want != success && h.want != ignored {
			want = Unhealthy
		}
		if got := checkers[h.typ].Status(h.target); got != want {
			t.Errorf("%s: %v, want %v", h.name, got, want)
		}
	}
	if s := checkers[HTTP].Status(good); s != Healthy {
		t.Fatalf("good is %v", s)
	}
}
