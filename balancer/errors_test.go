package balancer

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// A pick that finds no healthy target says why: the upstream, how many
// targets it has and the latest reasons of the first few, bounded.
func TestNoHealthyErrorSaysWhy(t *testing.T) {
	c := newNamedChecker(t, "auth.internal")
	b := New(c)
	_, err := b.Pick()
	if want := `balancer: no healthy target for upstream "auth.internal": no targets`; err == nil || err.Error() != want {
		t.Fatalf("no targets: %v, want %q", err, want)
	}

	as := addrs(5)
	for i := range as {
		as[i].Hostname = "auth.internal"
	}
	as[4].Hostname = "other.example" // an SRV target: its name is shown
	c.SetTargets(as)
	c.ReportTCPFailure(as[0])
	c.ReportHTTPStatus(as[1], 500)
	c.ReportTimeout(as[2])
	c.ReportTCPFailure(as[3])
	c.ReportTCPFailure(as[4])
	_, err = b.Pick()
	var nh *NoHealthyError
	if !errors.Is(err, ErrNoHealthy) || !errors.As(err, &nh) {
		t.Fatalf("err = %v, want a *NoHealthyError matching ErrNoHealthy", err)
	}
	if nh.Upstream != "auth.internal" || nh.Targets != 5 || len(nh.First) != MaxReasons {
		t.Errorf("%+v", nh)
	}
	msg := err.Error()
	for _, want := range []string{
		`balancer: no healthy target for upstream "auth.internal": 5 targets, all unhealthy: `,
		nh.First[0].Reason + " (192.0.2.1:8080), ",
		"HTTP 500 (192.0.2.2:8080), ",
		nh.First[2].Reason + " (192.0.2.3:8080) and 2 more",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if nh.First[0].Reason == "" || nh.First[2].Reason == "" {
		t.Errorf("reasons missing: %+v", nh.First)
	}
	// The same error for every pick of the snapshot: built once.
	if _, again := b.Pick(); again != err {
		t.Error("a second pick from the same snapshot made a new error")
	}

	c.SetTargets(as[4:])
	_, err = b.PickCall()
	if want := "1 target, unhealthy: "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(other.example/192.0.2.5:8080)") {
		t.Errorf("one SRV target: %q", err)
	}
}

// A reason too long for a message is cut, at a character boundary.
func TestNoHealthyErrorBounded(t *testing.T) {
	long := strings.Repeat("é", 200)
	e := &NoHealthyError{Upstream: "api", Targets: 1000, First: []health.Target{
		{Address: resolver.Address{IP: netip.MustParseAddr("192.0.2.1"), Port: 80, Hostname: "api"}, Status: health.Unhealthy, Reason: long},
		{Address: resolver.Address{IP: netip.MustParseAddr("192.0.2.2"), Port: 80, Hostname: "api"}, Status: health.Unhealthy},
	}}
	msg := e.Error()
	if len(msg) > 400 || !strings.HasSuffix(msg, "no check passed yet (192.0.2.2:80) and 998 more") {
		t.Errorf("message of %d bytes: %q", len(msg), msg)
	}
	if !strings.Contains(msg, "é…") || strings.ContainsRune(msg, '\uFFFD') {
		t.Errorf("the long reason is not cut at a character: %q", msg)
	}
}

// PickCallExcept with every candidate skipped says so.
func TestNoHealthyErrorSkipped(t *testing.T) {
	as := addrs(2)
	b := New(newChecker(t, as...))
	_, err := b.PickCallExcept([]resolver.Key{as[0].Key(), as[1].Key()})
	if !errors.Is(err, ErrNoHealthy) || !strings.Contains(err.Error(), "every candidate skipped (2 tried or unavailable)") {
		t.Fatalf("err = %v", err)
	}
}

// The logger hears when picks stop for want of a healthy target (with the
// reasons), when they resume, and when a level enters or leaves panic.
func TestLogsChanges(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	levels := levelTargets(4, 4)
	all := append(append([]resolver.Address(nil), levels[0]...), levels[1]...)
	c := newChecker(t, all...)
	b := New(c, WithPanicThreshold(0.5), WithLogger(log))
	pick := func() {
		t.Helper()
		_, _ = b.Pick()
	}
	pick()
	if buf.Len() != 0 {
		t.Fatalf("logged with every target healthy: %s", buf.String())
	}
	setUnhealthy(t, c, levels[0][1:]...) // 1 of 4 healthy in each level: both in panic
	setUnhealthy(t, c, levels[1][1:]...)
	pick()
	if !strings.Contains(buf.String(), "priority level in panic") || !strings.Contains(buf.String(), "priority=0") {
		t.Errorf("no panic logged: %s", buf.String())
	}
	buf.Reset()
	setHealthy(t, c, levels[0]...)
	setHealthy(t, c, levels[1]...)
	pick()
	if !strings.Contains(buf.String(), "out of panic") {
		t.Errorf("no end of panic logged: %s", buf.String())
	}

	buf.Reset()
	c2 := newChecker(t, addrs(2)...)
	b2 := New(c2, WithLogger(log))
	setUnhealthy(t, c2, addrs(2)...)
	_, _ = b2.Pick()
	if !strings.Contains(buf.String(), "no healthy target") || !strings.Contains(buf.String(), "2 targets, all unhealthy") {
		t.Errorf("no failure logged: %s", buf.String())
	}
	buf.Reset()
	_, _ = b2.Pick()
	if buf.Len() != 0 {
		t.Errorf("logged again without a change: %s", buf.String())
	}
	setHealthy(t, c2, addr(1))
	_, _ = b2.Pick()
	if !strings.Contains(buf.String(), "healthy targets again") {
		t.Errorf("no recovery logged: %s", buf.String())
	}
}
