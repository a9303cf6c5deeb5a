package health

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Every probe outcome says why.
func TestProbeReasons(t *testing.T) {
	bs := backends(t, "127.0.74.1", 2, nil)
	bs[1].SetStatus(503)
	refused, err := backendtest.RefusedPort(mustIP("127.0.74.9"))
	if err != nil {
		t.Fatal(err)
	}
	hung := backends(t, "127.0.74.10", 1, nil)[0]
	hung.SetMode(backendtest.Hang)
	bs[0].SetPathStatus("/healthz", 404)
	cases := []struct {
		name   string
		typ    ProbeType
		path   string
		a      resolver.Address
		want   outcome
		reason string
	}{
		{"ok", HTTP, "", bs[0].Address(""), success, "HTTP 200 from GET /"},
		{"503", HTTP, "", bs[1].Address(""), httpFailure, "HTTP 503 from GET /"},
		{"404 on a path", HTTP, "/healthz", bs[0].Address(""), httpFailure, "HTTP 404 from GET /healthz"},
		{"with a query", HTTP, "/?deep=1", bs[0].Address(""), success, "HTTP 200 from GET /?deep=1"},
		{"refused", HTTP, "", resolver.Address{IP: mustIP("127.0.74.9"), Port: refused}, tcpFailure, "connection refused"},
		{"tcp refused", TCP, "", resolver.Address{IP: mustIP("127.0.74.9"), Port: refused}, tcpFailure, "connection refused"},
		{"tcp ok", TCP, "", bs[0].Address(""), success, "connected"},
		{"timeout", HTTP, "", hung.Address(""), timeout, "timeout after 200ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fast("why", time.Second)
			cfg.Active.Type = tc.typ
			cfg.Active.Path = tc.path
			cfg.Active.Timeout = 3 * time.Second
			if tc.want == timeout {
				cfg.Active.Timeout = 200 * time.Millisecond
			}
			got := probeOnce(t, cfg, tc.a)
			if got.o != tc.want || got.reason != tc.reason {
				t.Fatalf("outcome %v %q, want %v %q", got.o, got.reason, tc.want, tc.reason)
			}
		})
	}
}

// Probe requests carry the configured headers; a body match turns a healthy
// status without the expected text into an HTTP failure.
func TestProbeHeadersAndBody(t *testing.T) {
	b := backends(t, "127.0.74.20", 1, nil)[0]
	b.SetBody(`{"status":"ok"}`)
	cfg := fast("hb", time.Second)
	cfg.Active.Timeout = 3 * time.Second
	cfg.Active.Headers = http.Header{"Authorization": {"Bearer probe"}, "User-Agent": {"my-checker"}}
	cfg.Active.ExpectBody = `"status":"ok"`
	if got := probeOnce(t, cfg, b.Address("")); got.o != success {
		t.Fatalf("matching body: %+v", got)
	}
	if h := b.Header("Authorization"); h["Bearer probe"] != 1 {
		t.Fatalf("Authorization received: %v", h)
	}
	if h := b.Header("User-Agent"); h["my-checker"] != 1 || len(h) != 1 {
		t.Fatalf("User-Agent received: %v", h)
	}
	b.SetBody(`{"status":"degraded"}`)
	if got := probeOnce(t, cfg, b.Address("")); got.o != httpFailure || !strings.Contains(got.reason, "body without") {
		t.Fatalf("body without the text: %+v", got)
	}
	for _, h := range []http.Header{{"Host": {"x"}}, {"Bad Name": {"x"}}, {"X-Ok": {"a\r\nb"}}} {
		cfg.Active.Headers = h
		if _, err := NewChecker(cfg, nil); err == nil {
			t.Errorf("headers %v accepted", h)
		}
	}
}

// A custom Prober replaces the built-in probe; its reason reaches the
// StatusChange and the ProbeResult.
func TestCustomProber(t *testing.T) {
	var calls atomic.Int64
	var failing atomic.Bool
	failing.Store(true)
	p := ProberFunc(func(ctx context.Context, a resolver.Address) (ProbeOutcome, string) {
		calls.Add(1)
		if a.Port != 9999 {
			return ProbeTCPFailure, "wrong port"
		}
		if _, ok := ctx.Deadline(); !ok {
			return ProbeTCPFailure, "no deadline"
		}
		if failing.Load() {
			return ProbeHTTPFailure, "NOT_SERVING"
		}
		return ProbeSuccess, "SERVING"
	})
	cfg := fast("custom", 10*time.Millisecond)
	cfg.Active.Prober = p
	cfg.Active.Port = 9999
	bus := newBus(t)
	log := recordEvents(t, bus, "custom")
	c := newChecker(t, cfg, bus, nil)
	a := resolver.Address{IP: mustIP("127.0.74.30"), Port: 80}
	c.SetTargets([]resolver.Address{a})
	start(t, c)
	testutil.Eventually(t, 3*time.Second, "the target to turn unhealthy", func() bool { return c.Status(a) == Unhealthy })
	if es := log.to(a, Unhealthy); len(es) > 0 && es[0].Reason != "NOT_SERVING" {
		t.Fatalf("reason %q", es[0].Reason)
	}
	failing.Store(false)
	testutil.Eventually(t, 3*time.Second, "the target to heal", func() bool { return c.Status(a) == Healthy })
	if tg, _ := c.Target(a); tg.Reason != "SERVING" {
		t.Fatalf("reason %q", tg.Reason)
	}
	// The same Prober in an Update is no probe change; another one is.
	n := c.Config()
	if err := c.Update(n); err != nil {
		t.Fatal(err)
	}
}

// A status change is logged at Info with its reason; durations are text.
func TestStatusChangeLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	cfg := passiveOnly("logs")
	cfg.Passive.Ejection = Ejection{Base: time.Hour}
	c := newChecker(t, cfg, nil, nil, WithLogger(logger))
	a := resolver.Address{IP: mustIP("127.0.74.40"), Port: 80, Hostname: "logs.test"}
	c.SetTargets([]resolver.Address{a})
	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a)
	out := buf.String()
	for _, want := range []string{`"level":"INFO"`, `"msg":"health: status changed"`, `"reason":"connection failure"`,
		`"passive":"unhealthy"`, `"address":"logs.test/127.0.74.40:80"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
	if !regexp.MustCompile(`"ejected_for":"5[4-9]m[0-9.]+s"`).MatchString(out) { // 1h less up to 10%, as text
		t.Errorf("log lacks the ejection's duration as text: %s", out)
	}
}
