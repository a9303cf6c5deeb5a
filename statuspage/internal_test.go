package statuspage

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// text redacts credentials and secrets, keeps the rest, and bounds the
// result.
func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"HTTP 500", "HTTP 500"},
		{"connection refused", "connection refused"},
		{"GET http://admin:pw@10.0.0.1:80/x?token=abc&a=1 failed", "GET http://REDACTED@10.0.0.1:80/x?a=REDACTED&token=REDACTED failed"},
		{"nats://u:p@nats:4222", "nats://REDACTED@nats:4222"},
		{"https://host/path#frag", "https://host/path"},
		{"password=hunter2; user=bob", "password=REDACTED; user=bob"},
		{"Authorization: Bearer abc.def", "Authorization: REDACTED"},
		{"api_key: 123 and API-KEY=456", "api_key: REDACTED and API-KEY=REDACTED"},
		{"line\nbreak\x00nul", "line break nul"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
	} {
		if got := text(c.in); got != c.want {
			t.Errorf("text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := text(strings.Repeat("é", 10_000))
	if len(long) > maxText || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("a long text is cut to %d bytes (valid UTF-8: %v)", len(long), utf8.ValidString(long))
	}
}

// The timeline draws the window ending now: from the changes when there
// are some, from LastChange otherwise (unknown before it), the last
// segment in the current status.
func TestTimeline(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	ptr := func(t time.Time) *time.Time { return &t }
	type seg struct {
		class string
		x, w  float64
	}
	for _, c := range []struct {
		name  string
		a     Address
		segs  []seg
		marks []float64
	}{
		{"no time known: the current status all along",
			Address{Status: "healthy"}, []seg{{"healthy", 0, 240}}, nil},
		{"last change in the window: unknown before it",
			Address{Status: "unhealthy", LastChange: ptr(at(15 * time.Second))}, []seg{{"unknown", 0, 180}, {"unhealthy", 180, 60}}, []float64{180}},
		{"last change before the window",
			Address{Status: "healthy", LastChange: ptr(at(2 * time.Minute))}, []seg{{"healthy", 0, 240}}, nil},
		{"changes: each segment in its status",
			Address{Status: "healthy", LastChange: ptr(at(15 * time.Second)), Changes: []Change{
				{At: at(90 * time.Second), From: "unknown", To: "healthy"}, // before the window
				{At: at(45 * time.Second), From: "healthy", To: "unhealthy", Reason: "HTTP 500"},
				{At: at(15 * time.Second), From: "unhealthy", To: "healthy"},
			}},
			[]seg{{"healthy", 0, 60}, {"unhealthy", 60, 120}, {"healthy", 180, 60}}, []float64{60, 180}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tv := timeline(c.a, now, time.Minute)
			var got []seg
			for _, s := range tv.Segments {
				got = append(got, seg{s.Class, s.X, s.W})
			}
			var marks []float64
			for _, m := range tv.Marks {
				marks = append(marks, m.X)
			}
			if len(got) != len(c.segs) || len(marks) != len(c.marks) {
				t.Fatalf("segments %v, marks %v; want %v, %v", got, marks, c.segs, c.marks)
			}
			for i := range got {
				if got[i] != c.segs[i] {
					t.Errorf("segment %d: %v, want %v", i, got[i], c.segs[i])
				}
			}
			for i := range marks {
				if marks[i] != c.marks[i] {
					t.Errorf("mark %d at %v, want %v", i, marks[i], c.marks[i])
				}
			}
		})
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond:  "850µs",
		12 * time.Millisecond:   "12ms",
		3210 * time.Millisecond: "3.2s",
		10 * time.Second:        "10s",
		5 * time.Minute:         "5m",
		250 * time.Second:       "4m10s",
		2 * time.Hour:           "2h",
		125 * time.Minute:       "2h5m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
