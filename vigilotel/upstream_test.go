package vigilotel

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/tally"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

const upstream = "shop.test"

// world is a real Upstream on loopback: a DNS server naming two backends,
// probed, resolved and sent requests through the upstream's Transport.
type world struct {
	dns    *dnstest.Server
	bs     []*backendtest.Backend
	up     *vigil.Upstream
	client *http.Client
	url    string
	stop   func() // ends Run and waits for it
}

// newWorld builds the world; first is the first backend's address. It
// does not run the upstream yet: see run.
func newWorld(t *testing.T, first string) *world {
	t.Helper()
	srv, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	var ips []string
	for _, b := range bs {
		ips = append(ips, b.IP.String())
	}
	if err := srv.SetA(upstream+".", 0, ips...); err != nil {
		t.Fatal(err)
	}
	up, err := vigil.New(vigil.Config{
		Name: upstream, Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()},
			MinTTL: 50 * time.Millisecond, MaxTTL: time.Second, Timeout: 500 * time.Millisecond},
		Health: health.Config{
			Active: health.Active{
				Path:      "/",
				Timeout:   time.Second,
				Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond, Successes: 1},
				Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond, HTTPFailures: 2},
			},
			Passive: health.Passive{Unhealthy: health.UnhealthyRules{HTTPFailures: 2}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := up.Transport(nil)
	t.Cleanup(tr.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	return &world{dns: srv, bs: bs, up: up, url: "http://" + upstream + ":" + strconv.Itoa(int(bs[0].Port)) + "/api",
		client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// run runs the upstream until stop or the end of the test.
func (w *world) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.up.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var once sync.Once
	w.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(w.stop)
}

// send sends n requests and returns how many answered with each status.
func (w *world) send(t *testing.T, n int) map[int]int {
	t.Helper()
	codes := make(map[int]int)
	for range n {
		resp, err := w.client.Get(w.url)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		codes[resp.StatusCode]++
	}
	return codes
}

// story plays what every test here looks at: two healthy targets serve 20
// requests; backend 1 fails the traffic (not the probes) until it is
// ejected; DNS fails. ejections says how many there are so far.
func (w *world) story(t *testing.T, ejections func() float64) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "two healthy targets", func() bool {
		n := 0
		for _, tg := range w.up.Checker().Targets() {
			if tg.Status == health.Healthy {
				n++
			}
		}
		return n == 2
	})
	if codes := w.send(t, 20); codes[200] != 20 {
		t.Fatalf("answers %v, want 20 × 200", codes)
	}
	w.bs[1].SetPathStatus("/api", 503)
	for i := 0; ejections() == 0; i++ {
		if i == 200 {
			t.Fatal("no ejection after 200 requests, half of them answered 503")
		}
		w.send(t, 1)
	}
	w.dns.SetRcode(upstream+".", dns.RcodeServerFailure)
}

// Every instrument has the name, kind, unit and attributes docs/metrics.md
// gives it, fed by a real upstream's events.
func TestInstruments(t *testing.T) {
	w := newWorld(t, "127.0.54.1")
	m, r := newMetrics(t, w.up.Bus())
	m.AddChecker(w.up.Checker())
	w.run(t)
	w.story(t, func() float64 { v, _ := value(r.collect(t), "vigil.target.ejections"); return v })
	r.waitValue(t, "a SERVFAIL resolution", above(0), "vigil.dns.failures", "error.type", "servfail")
	r.waitValue(t, "a SERVFAIL query", above(0), "dns.lookup.duration", "error.type", "servfail")
	ms := r.collect(t)

	up := string(UpstreamKey)
	type want struct {
		kind  string // "counter", "updown", "gauge", "histogram"
		unit  string
		attrs []string // every attribute set seen, as keys() gives it
	}
	wants := map[string]want{
		"vigil.target.count":          {"updown", "{target}", []string{"vigil.target.status," + up}},
		"vigil.target.status_changes": {"counter", "{change}", []string{"vigil.target.status," + up}},
		"vigil.target.ejected":        {"updown", "{target}", []string{up}},
		"vigil.target.ejections":      {"counter", "{ejection}", []string{up}},
		"vigil.target.remembered":     {"updown", "{target}", []string{up}},
		"vigil.target.requests":       {"counter", "{request}", []string{"network.peer.address,server.address,server.port," + up}},
		"vigil.probe.duration": {"histogram", "s", []string{
			"http.response.status_code,vigil.probe.outcome," + up}},
		"vigil.probe.active":      {"updown", "{probe}", []string{up}},
		"vigil.probe.dropped":     {"counter", "{probe}", []string{up}},
		"vigil.requests":          {"counter", "{request}", []string{"vigil.request.outcome," + up}},
		"vigil.dns.failures":      {"counter", "{failure}", []string{"error.type," + up}},
		"vigil.dns.address.count": {"updown", "{address}", []string{up}},
		"vigil.dns.changes":       {"counter", "{change}", []string{"vigil.dns.change.result," + up}},
		"vigil.dns.version":       {"gauge", "{version}", []string{up}},
		"dns.lookup.duration": {"histogram", "s", []string{
			"dns.question.name,vigil.dns.record_type," + up,
			"dns.question.name,error.type,vigil.dns.record_type," + up}},
	}
	for name, wt := range wants {
		got, ok := ms[name]
		if !ok {
			t.Errorf("%s: not reported", name)
			continue
		}
		if got.Unit != wt.unit {
			t.Errorf("%s: unit %q, want %q", name, got.Unit, wt.unit)
		}
		if got.Description == "" {
			t.Errorf("%s: no description", name)
		}
		kind := "?"
		switch d := got.Data.(type) {
		case metricdata.Sum[int64]:
			kind = "updown"
			if d.IsMonotonic {
				kind = "counter"
			}
		case metricdata.Gauge[int64]:
			kind = "gauge"
		case metricdata.Histogram[float64]:
			kind = "histogram"
			bounds := tally.Buckets
			if name == "dns.lookup.duration" {
				bounds = conventionBuckets
			}
			for _, p := range d.DataPoints {
				if !slices.Equal(p.Bounds, bounds) {
					t.Errorf("%s: bounds %v, want %v", name, p.Bounds, bounds)
					break
				}
			}
		}
		if kind != wt.kind {
			t.Errorf("%s: a %s, want a %s", name, kind, wt.kind)
		}
		seen := make(map[string]bool)
		for _, p := range points(got) {
			seen[keys(p.attrs)] = true
			if v, _ := p.attrs.Value(UpstreamKey); v.AsString() != upstream {
				t.Errorf("%s: %s = %q, want %q", name, UpstreamKey, v.AsString(), upstream)
			}
		}
		for _, a := range wt.attrs {
			if !seen[a] {
				t.Errorf("%s: no point with attributes {%s}; seen %v", name, a, seen)
			}
			delete(seen, a)
		}
		if name != "vigil.probe.duration" && len(seen) > 0 { // a probe may time out on a loaded machine
			t.Errorf("%s: unexpected attribute sets %v", name, seen)
		}
	}
	for name := range ms {
		if _, ok := wants[name]; !ok {
			t.Errorf("%s: reported, but not in the table", name)
		}
	}

	// Values that follow from the story.
	for _, c := range []struct {
		name string
		kv   []string
		ok   func(float64) bool
		want string
	}{
		{"vigil.target.count", nil, equals(2), "2 targets"},
		{"vigil.dns.address.count", nil, equals(2), "2 addresses"},
		{"vigil.requests", []string{"vigil.request.outcome", "2xx"}, above(19), "at least 20 answered 2xx"},
		{"vigil.requests", []string{"vigil.request.outcome", "5xx"}, above(1), "at least 2 answered 5xx"},
		{"vigil.target.requests", []string{"network.peer.address", w.bs[1].IP.String(), "server.address", upstream,
			"server.port", strconv.Itoa(int(w.bs[1].Port))}, above(1), "backend 1 picked"},
		{"vigil.target.status_changes", []string{"vigil.target.status", "unhealthy"}, above(0), "a change to unhealthy"},
		{"vigil.probe.duration", []string{"vigil.probe.outcome", "success", "http.response.status_code", "200"}, above(1), "passing probes"},
		{"vigil.dns.changes", []string{"vigil.dns.change.result", "applied"}, above(0), "an applied address set"},
		{"vigil.dns.version", nil, above(0), "a version"},
		{"dns.lookup.duration", []string{"dns.question.name", upstream + ".", "vigil.dns.record_type", "A"}, above(0), "A queries"},
	} {
		if v, _ := value(ms, c.name, c.kv...); !c.ok(v) {
			t.Errorf("%s%v = %v, want %s", c.name, c.kv, v, c.want)
		}
	}
}

// A probe failure carries error.type, and so does a query that failed.
func TestFailureAttributes(t *testing.T) {
	w := newWorld(t, "127.0.54.11")
	m, r := newMetrics(t, w.up.Bus())
	m.AddChecker(w.up.Checker())
	w.run(t)
	r.waitValue(t, "passing probes", above(0), "vigil.probe.duration", "vigil.probe.outcome", "success")
	w.bs[0].SetStatus(500)
	r.waitValue(t, "failing probes", above(0), "vigil.probe.duration",
		"vigil.probe.outcome", "http_failure", "error.type", "http_failure", "http.response.status_code", "500")
	r.waitValue(t, "one unhealthy target", equals(1), "vigil.target.count", "vigil.target.status", "unhealthy")
	for _, p := range points(r.collect(t)["vigil.probe.duration"]) {
		outcome, _ := p.attrs.Value(ProbeOutcomeKey)
		_, hasErr := p.attrs.Value("error.type")
		if failed := outcome.AsString() != "success" && outcome.AsString() != "ignored"; hasErr != failed {
			t.Errorf("probes {%s}: error.type set %v, want %v", keys(p.attrs), hasErr, failed)
		}
	}
}
