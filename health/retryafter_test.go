package health

import (
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"Tue, 01 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Tue, 01 Dec 2026 11:00:00 GMT", 0, true}, // in the past
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
		{"99999999999", 0, false}, // beyond 32 bits of seconds
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// ReportFailure counts a protocol's own failure as an HTTP failure with
// the reason given.
func TestReportFailure(t *testing.T) {
	cfg := passiveOnly("rf")
	cfg.Passive.Unhealthy.HTTPFailures = 2
	c := newChecker(t, cfg, nil, nil)
	a := resolver.Address{IP: mustIP("127.0.77.1"), Port: 80}
	c.SetTargets([]resolver.Address{a})
	c.ReportFailure(a, "gRPC Internal")
	c.ReportFailure(a, "gRPC Internal")
	tg, _ := c.Target(a)
	if tg.Passive != Unhealthy || tg.PassiveCounts.HTTPFailures != 2 || tg.Reason != "gRPC Internal" {
		t.Fatalf("after two failures: %+v", tg)
	}
}
