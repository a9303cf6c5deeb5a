package resolver

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/testutil"
)

// logLines returns the JSON log lines written to buf whose message starts
// with msg.
func logLines(t *testing.T, buf *testutil.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if s, _ := m["msg"].(string); strings.HasPrefix(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// TestLogs: a change is logged at Info with its counts and addresses, a
// failure at Warn with its error and retry delay as text, and the recovery
// at Info with the streak's length and duration as text. Every line names
// the upstream.
func TestLogs(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
	buf := &testutil.Buffer{}
	log := slog.New(slog.NewJSONHandler(buf, nil))
	bus := newBus(t)
	changes := record(t, bus, Topic("web.test"))
	recoveries := record(t, bus, RecoveryTopic("web.test"))
	s := mustSource(t, Config{Name: "WEB.test.", Port: 80, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus, WithLogger(log))
	start(t, s)
	waitChanges(t, changes, 1, patience)
	srv.SetRcode("web.test", dns.RcodeServerFailure)
	testutil.Eventually(t, patience, "two failures logged", func() bool {
		return len(logLines(t, buf, "resolver: resolution failed")) >= 2
	})
	srv.SetRcode("web.test", dns.RcodeSuccess)
	must(t, srv.SetA("web.test", 0, "10.0.0.2", "10.0.0.3"))
	waitChanges(t, changes, 2, patience)
	waitValue(t, recoveries, patience, "a recovery", func(Recovery) bool { return true })

	for _, m := range logLines(t, buf, "resolver:") {
		if m["name"] != "web.test" || m["type"] != "IP" { // Type A means A and AAAA, as IP
			t.Errorf("line %v does not name the upstream web.test", m)
		}
		for k, v := range m {
			if f, ok := v.(float64); ok && f >= 1e6 && k != "version" {
				t.Errorf("attribute %s = %v looks like a raw duration: %v", k, v, m)
			}
		}
	}
	c := logLines(t, buf, "resolver: address set changed")
	if len(c) != 2 {
		t.Fatalf("%d change lines, want 2", len(c))
	}
	if c[0]["level"] != "INFO" || c[0]["added"] != 2.0 || c[0]["total"] != 2.0 || c[0]["because"] != "the first answer" ||
		c[0]["added_addrs"] != "web.test/10.0.0.1:80, web.test/10.0.0.2:80" {
		t.Errorf("first change line %v", c[0])
	}
	if c[1]["added"] != 1.0 || c[1]["removed"] != 1.0 || c[1]["removed_addrs"] != "web.test/10.0.0.1:80" || c[1]["because"] != "the DNS answer changed" {
		t.Errorf("second change line %v", c[1])
	}
	f := logLines(t, buf, "resolver: resolution failed")[0]
	if f["level"] != "WARN" || !strings.Contains(f["err"].(string), "server failure") {
		t.Errorf("failure line %v", f)
	}
	if d, err := time.ParseDuration(f["retry_in"].(string)); err != nil || d <= 0 {
		t.Errorf("retry_in %v is not a duration as text", f["retry_in"])
	}
	r := logLines(t, buf, "resolver: resolution recovered")
	if len(r) != 1 || r[0]["level"] != "INFO" || r[0]["failures"].(float64) < 2 || !strings.Contains(r[0]["last_err"].(string), "server failure") {
		t.Fatalf("recovery lines %v", r)
	}
	if d, err := time.ParseDuration(r[0]["failing_for"].(string)); err != nil || d <= 0 {
		t.Errorf("failing_for %v is not a duration as text", r[0]["failing_for"])
	}
}

// TestLoggedAddressesBounded: a Change of many addresses lists a few of
// them and says how many more there are.
func TestLoggedAddressesBounded(t *testing.T) {
	got := listed(addrs("web.test", 80, manyA(20)...))
	if n := strings.Count(got, ", "); n != maxLogged-1 || !strings.HasSuffix(got, " and 12 more") {
		t.Fatalf("listed = %q", got)
	}
}

// TestConfiguredBackoff: Config.Backoff sets the retry delays.
func TestConfiguredBackoff(t *testing.T) {
	srv := startDNS(t)
	srv.SetRcode("web.test", dns.RcodeServerFailure)
	bus := newBus(t)
	failures := record(t, bus, FailureTopic("web.test"))
	s, err := NewSource(Config{
		Name: "web.test", Port: 80, Servers: []string{srv.Addr()},
		Backoff: Backoff{Initial: 30 * time.Millisecond, Max: 70 * time.Millisecond, Jitter: -1},
	}, bus)
	must(t, err)
	start(t, s)
	testutil.Eventually(t, patience, "4 failures", func() bool { return len(failures.all()) >= 4 })
	want := []time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 70 * time.Millisecond, 70 * time.Millisecond}
	for i, f := range failures.all()[:4] {
		if f.Next != want[i] {
			t.Fatalf("failure %d: Next %v, want %v", i, f.Next, want[i])
		}
	}
}
