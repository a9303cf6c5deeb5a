package statuspage

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"time"
)

//go:embed page.html
var pageHTML string

// pageTemplate renders a view; html/template escapes every value it
// prints for where it prints it.
var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// render writes the HTML page of v.
func render(w io.Writer, v *view) error { return pageTemplate.Execute(w, v) }

// Timeline geometry, in SVG user units.
const (
	timelineWidth  = 240.0
	timelineHeight = 14.0
)

// view is what the HTML template reads: the page and how to show it.
type view struct {
	Page
	Title   string
	Refresh int  // seconds between reloads; 0: none
	Paused  bool // the request turned reloading off
	Window  time.Duration
	Width   float64
	Height  float64
	// Totals over the upstreams shown.
	Targets, Healthy, Unhealthy int
	now                         time.Time
}

func newView(p Page, cfg Config, refresh time.Duration) *view {
	v := &view{
		Page:    p,
		Title:   cfg.Title,
		Refresh: int(math.Ceil(refresh.Seconds())),
		Paused:  refresh == 0 && cfg.Refresh > 0,
		Window:  cfg.Window,
		Width:   timelineWidth,
		Height:  timelineHeight,
		now:     p.GeneratedAt,
	}
	for _, u := range p.Upstreams {
		v.Targets += u.Targets
		v.Healthy += u.Healthy
		v.Unhealthy += u.Unhealthy
	}
	return v
}

// when returns t as a time, and whether it is one.
func when(t any) (time.Time, bool) {
	switch t := t.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil {
			return *t, !t.IsZero()
		}
	}
	return time.Time{}, false
}

// Clock returns t's time of day in UTC ("15:04:05"); "—" for none.
func (v *view) Clock(t any) string {
	tt, ok := when(t)
	if !ok {
		return "—"
	}
	return tt.UTC().Format("15:04:05")
}

// Stamp returns t in RFC 3339 with milliseconds; "" for none.
func (v *view) Stamp(t any) string {
	tt, ok := when(t)
	if !ok {
		return ""
	}
	return tt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Rel returns t relative to the page's time: "3.2s ago", "in 12s", "now";
// "—" for none.
func (v *view) Rel(t any) string {
	tt, ok := when(t)
	if !ok {
		return "—"
	}
	d := tt.Sub(v.now)
	switch {
	case d > -50*time.Millisecond && d < 50*time.Millisecond:
		return "now"
	case d < 0:
		return human(-d) + " ago"
	}
	return "in " + human(d)
}

// Ms returns a duration given in milliseconds, readably.
func (v *view) Ms(ms float64) string { return human(time.Duration(ms * float64(time.Millisecond))) }

// DurMs returns a duration in milliseconds that may be unknown; "—" then.
func (v *view) DurMs(ms *float64) string {
	if ms == nil {
		return "—"
	}
	return v.Ms(*ms)
}

// Span returns the timeline's window, readably ("5m").
func (v *view) Span() string { return human(v.Window) }

// Share returns a share of traffic as a percentage; "—" when unknown.
func (v *view) Share(f *float64) string {
	if f == nil {
		return "—"
	}
	return strconv.FormatFloat(*f*100, 'f', 1, 64) + "%"
}

// Count returns a count that may be unknown; "—" then.
func (v *view) Count(n any) string {
	switch n := n.(type) {
	case *int64:
		if n != nil {
			return strconv.FormatInt(*n, 10)
		}
	case *uint64:
		if n != nil {
			return strconv.FormatUint(*n, 10)
		}
	}
	return "—"
}

// Fill returns the share of an answer's TTL left, 0 to 1, as a width in
// user units of a bar w wide.
func (v *view) Fill(a *Answer, w float64) float64 {
	if a == nil || a.TTLMs <= 0 {
		return 0
	}
	return math.Round(min(max(a.TTLLeftMs/a.TTLMs, 0), 1)*w*10) / 10
}

// human returns d rounded for reading: "850µs", "12ms", "3.2s", "4m10s",
// "2h5m".
func human(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return trimZero(d.Round(time.Second).String())
	}
	return trimZero(d.Round(time.Minute).String())
}

// trimZero drops the zero seconds and minutes of a duration's text: "5m0s"
// is "5m", "2h0m0s" is "2h".
func trimZero(s string) string {
	for _, z := range []string{"0s", "0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z && (s[len(s)-len(z)-1] < '0' || s[len(s)-len(z)-1] > '9') {
			s = s[:len(s)-len(z)]
		}
	}
	return s
}

// timelineView is an address's timeline drawn as SVG: its status over the
// page's window, in segments, with a mark at each change.
type timelineView struct {
	Segments []segment
	Marks    []mark
}

type segment struct {
	X, W  float64
	Class string // "healthy", "unhealthy" or "unknown"
	Title string
}

type mark struct {
	X     float64
	Title string
}

// Timeline draws a's timeline.
func (v *view) Timeline(a Address) timelineView { return timeline(a, v.now, v.Window) }

// timeline returns a's status over the window ending at now: from its
// Changes, or, while the checker keeps none, from LastChange (before which
// it is unknown). The last segment has the status a has now.
func timeline(a Address, now time.Time, window time.Duration) timelineView {
	start := now.Add(-window)
	x := func(t time.Time) float64 {
		f := float64(t.Sub(start)) / float64(window)
		return math.Round(min(max(f, 0), 1)*timelineWidth*10) / 10
	}
	type event struct {
		at       time.Time
		from, to string
		reason   string
	}
	var events []event
	for _, c := range a.Changes {
		events = append(events, event{c.At, c.From, c.To, c.Reason})
	}
	if len(events) == 0 && a.LastChange != nil {
		events = append(events, event{at: *a.LastChange, from: "unknown", to: a.Status})
	}
	var tv timelineView
	cur, since := a.Status, start
	if len(events) > 0 {
		cur = events[0].from
	}
	for _, e := range events {
		if !e.at.After(start) {
			cur = e.to
			continue
		}
		if e.at.After(now) {
			break
		}
		tv.add(cur, since, e.at, x)
		title := fmt.Sprintf("%s %s → %s", e.at.UTC().Format("15:04:05.000"), e.from, e.to)
		if e.from == "unknown" && len(a.Changes) == 0 {
			title = fmt.Sprintf("%s %s (not recorded before)", e.at.UTC().Format("15:04:05.000"), e.to)
		}
		if e.reason != "" {
			title += ": " + e.reason
		}
		tv.Marks = append(tv.Marks, mark{X: x(e.at), Title: title})
		cur, since = e.to, e.at
	}
	tv.add(a.Status, since, now, x)
	return tv
}

// add appends the segment of status from since to until, unless it is
// empty at the timeline's resolution.
func (tv *timelineView) add(status string, since, until time.Time, x func(time.Time) float64) {
	x0, x1 := x(since), x(until)
	if x1 <= x0 {
		return
	}
	class := status
	if class != "healthy" && class != "unhealthy" {
		class = "unknown"
	}
	what := status
	if class == "unknown" {
		what = "not recorded"
	}
	tv.Segments = append(tv.Segments, segment{
		X: x0, W: math.Round((x1-x0)*10) / 10, Class: class,
		Title: fmt.Sprintf("%s from %s to %s (%s)", what, since.UTC().Format("15:04:05"), until.UTC().Format("15:04:05"), human(until.Sub(since))),
	})
}

// RefreshMeta returns the tag that reloads the page every Refresh
// seconds; none when it does not reload.
func (v *view) RefreshMeta() template.HTML {
	if v.Refresh <= 0 {
		return ""
	}
	return template.HTML(`<meta http-equiv="refresh" content="` + strconv.Itoa(v.Refresh) + `">`) // an int: nothing to escape
}
