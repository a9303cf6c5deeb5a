package health

import (
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// The state machine follows lua-resty-healthcheck: a success resets the
// failure counters, a failure resets successes, thresholds flip the status.
func TestStateRecord(t *testing.T) {
	th := thresholds{successes: 2, httpFailures: 3, tcpFailures: 2, timeouts: 2}
	cases := []struct {
		name  string
		start state
		seq   []outcome
		want  Status
	}{
		{"tcp failures reach threshold", state{status: Healthy}, []outcome{tcpFailure, tcpFailure}, Unhealthy},
		{"a success in between resets", state{status: Healthy}, []outcome{tcpFailure, success, tcpFailure}, Healthy},
		{"kinds count separately", state{status: Healthy}, []outcome{tcpFailure, timeout, httpFailure, httpFailure}, Healthy},
		{"ignored changes nothing", state{status: Healthy}, []outcome{tcpFailure, ignored, tcpFailure}, Unhealthy},
		{"successes heal", state{status: Unhealthy}, []outcome{success, success}, Healthy},
		{"a failure resets successes", state{status: Unhealthy}, []outcome{success, timeout, success}, Unhealthy},
		{"first success heals a new target", state{status: Unhealthy, untilFirst: true}, []outcome{success}, Healthy},
		{"a new target stays unhealthy until its first success", state{status: Unhealthy, untilFirst: true}, []outcome{timeout, httpFailure, timeout, success}, Healthy},
		{"after its first success the threshold applies", state{status: Unhealthy, untilFirst: true}, []outcome{success, timeout, timeout, success}, Unhealthy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start
			for _, o := range tc.seq {
				s.status = s.record(o, th)
			}
			if s.status != tc.want {
				t.Fatalf("status %v, want %v (%+v)", s.status, tc.want, s)
			}
		})
	}
}

// With Initial Unhealthy a new target is unhealthy until its first check
// passes (R7), not until the success threshold is reached.
func TestInitialUnhealthy(t *testing.T) {
	t.Run("passive", func(t *testing.T) {
		cfg := passiveOnly("init")
		cfg.Initial = Unhealthy
		c := newChecker(t, cfg, nil, nil)
		a := resolver.Address{IP: mustIP("127.0.7.21"), Port: 80}
		c.SetTargets([]resolver.Address{a})
		if c.Status(a) != Unhealthy {
			t.Fatalf("new target %v", c.Status(a))
		}
		c.ReportSuccess(a)
		if c.Status(a) != Healthy {
			t.Fatalf("after a success: %v", c.Status(a))
		}
	})
	t.Run("active", func(t *testing.T) {
		bs := backends(t, "127.0.7.20", 1, nil)
		cfg := fast("init", 20*time.Millisecond)
		cfg.Initial = Unhealthy
		cfg.Active.Healthy.Successes = 50
		c := newChecker(t, cfg, nil, nil)
		a := bs[0].Address("")
		c.SetTargets([]resolver.Address{a})
		if c.Status(a) != Unhealthy {
			t.Fatalf("new target %v", c.Status(a))
		}
		start(t, c)
		testutil.Eventually(t, 3*time.Second, "the first probe to pass", func() bool { return c.Status(a) == Healthy })
		if n := c.Stats().ProbesCompleted; n >= 50 {
			t.Fatalf("healthy after %d probes", n)
		}
	})
	t.Run("failing first", func(t *testing.T) {
		bs := backends(t, "127.0.7.22", 1, nil)
		bs[0].SetStatus(500)
		cfg := fast("init", 20*time.Millisecond)
		cfg.Initial = Unhealthy
		cfg.Active.Healthy.Successes = 50
		c := newChecker(t, cfg, nil, nil)
		a := bs[0].Address("")
		c.SetTargets([]resolver.Address{a})
		start(t, c)
		testutil.Eventually(t, 3*time.Second, "three failed probes", func() bool { tg, _ := c.Target(a); return tg.HTTPFailures >= 3 })
		if s := c.Status(a); s != Unhealthy {
			t.Fatalf("after failed probes: %v", s)
		}
		// Until a probe has passed, the first success heals, whatever came before.
		bs[0].SetStatus(200)
		testutil.Eventually(t, 3*time.Second, "the first probe to pass", func() bool { return c.Status(a) == Healthy })
		if tg, _ := c.Target(a); tg.Successes >= 50 {
			t.Fatalf("healthy after %d successes", tg.Successes)
		}
	})
}
