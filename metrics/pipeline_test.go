package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

const upstream = "shop.test"

// pipeline is the real thing on loopback: a DNS server, three backends, a
// DNS source, a checker and a balancer's Transport on one bus, with a
// Collector registered on its own registry.
type pipeline struct {
	dns    *dnstest.Server
	bs     []*backendtest.Backend
	reg    *prometheus.Registry
	col    *Collector
	client *http.Client
	url    string
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	srv, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.52.1"), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	p := &pipeline{dns: srv, bs: bs, url: "http://" + upstream + ":" + strconv.Itoa(int(bs[0].Port)) + "/"}
	p.setDNS(t, 0, 1)

	bus := events.New()
	t.Cleanup(bus.Close) // after everything below has stopped

	src, err := resolver.NewSource(resolver.Config{
		Name: upstream, Port: bs[0].Port, Servers: []string{srv.Addr()},
		MinTTL: 50 * time.Millisecond, MaxTTL: time.Second, Timeout: 500 * time.Millisecond,
	}, bus)
	if err != nil {
		t.Fatal(err)
	}
	checker, err := health.NewChecker(health.Config{
		Name: upstream,
		Active: health.Active{
			Timeout:   500 * time.Millisecond,
			Healthy:   health.HealthyRules{Interval: 25 * time.Millisecond, Successes: 2},
			Unhealthy: health.UnhealthyRules{Interval: 25 * time.Millisecond, HTTPFailures: 2},
		},
	}, bus)
	if err != nil {
		t.Fatal(err)
	}

	p.col = New(bus)
	t.Cleanup(p.col.Close)
	p.col.AddChecker(checker)
	p.reg = prometheus.NewRegistry()
	p.reg.MustRegister(p.col)

	tr := &pickTransport{b: balancer.New(checker, balancer.WithBus(bus)), rt: &http.Transport{}}
	t.Cleanup(tr.rt.CloseIdleConnections)
	p.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx) })
	wg.Go(func() { _ = checker.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

// setDNS makes the upstream's name resolve to the backends numbered idx.
func (p *pipeline) setDNS(t *testing.T, idx ...int) {
	t.Helper()
	var ips []string
	for _, i := range idx {
		ips = append(ips, p.bs[i].IP.String())
	}
	if err := p.dns.SetA(upstream+".", 0, ips...); err != nil {
		t.Fatal(err)
	}
}

// send sends n requests through the balancer's Transport.
func (p *pipeline) send(t *testing.T, n int) {
	t.Helper()
	for range n {
		resp, err := p.client.Get(p.url)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// addr is the address label of backend i.
func (p *pipeline) addr(i int) string { return p.bs[i].Address(upstream).String() }

// scrape fetches the exposition through an HTTP server, as Prometheus would.
func (p *pipeline) scrape(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(Handler(p.reg))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A short story on the real pipeline: all healthy and serving; a backend
// fails; DNS adds a backend; DNS drops one; DNS fails. The figures move
// with it.
func TestPipelineStory(t *testing.T) {
	p := startPipeline(t)
	g := p.reg
	up := []string{"upstream", upstream}
	with := func(kv ...string) []string { return append(append([]string{}, up...), kv...) }

	// 1. Two healthy targets, probed, resolved, serving traffic.
	waitValue(t, g, "two healthy targets", equals(2), "vigil_targets", with("status", "healthy")...)
	waitValue(t, g, "two resolved addresses", equals(2), "vigil_dns_addresses", up...)
	waitValue(t, g, "passing probes", above(2), "vigil_probes_total", with("outcome", "success")...)
	waitValue(t, g, "probe durations", above(2), "vigil_probe_duration_seconds", up...)
	waitValue(t, g, "answered DNS queries", above(0), "vigil_dns_queries_total", with("type", "A", "result", "ok")...)
	waitValue(t, g, "DNS query durations", above(0), "vigil_dns_query_duration_seconds", up...)
	applied := waitValue(t, g, "an applied Change", above(0), "vigil_changes_total", with("result", "applied")...)
	p.send(t, 40)
	waitValue(t, g, "40 requests answered 2xx", equals(40), "vigil_requests_total", with("outcome", "2xx")...)
	for _, i := range []int{0, 1} {
		waitValue(t, g, "picks of "+p.addr(i), above(0), "vigil_picks_total", with("address", p.addr(i))...)
	}
	if v, _ := value(t, g, "vigil_status_transitions_total", up...); v != 0 {
		t.Errorf("transitions = %v before anything failed", v)
	}

	// 2. Backend 1 fails: detected by probes, no more traffic to it.
	p.bs[1].SetStatus(500)
	waitValue(t, g, "one unhealthy target", equals(1), "vigil_targets", with("status", "unhealthy")...)
	waitValue(t, g, "a transition to unhealthy", equals(1), "vigil_status_transitions_total", with("to", "unhealthy")...)
	waitValue(t, g, "failing probes", above(1), "vigil_probes_total", with("outcome", "http_failure")...)
	waitValue(t, g, "target 1 reported unhealthy", equals(0), "vigil_target_healthy", with("address", p.addr(1))...)
	picks1, _ := value(t, g, "vigil_picks_total", with("address", p.addr(1))...)
	p.send(t, 40)
	waitValue(t, g, "80 requests answered 2xx", equals(80), "vigil_requests_total", with("outcome", "2xx")...)
	if v, _ := value(t, g, "vigil_picks_total", with("address", p.addr(1))...); v != picks1 {
		t.Errorf("picks of the unhealthy target grew from %v to %v", picks1, v)
	}

	// 3. DNS adds backend 2: a new Change is applied, the new target is
	// probed and picked; the unhealthy one stays unhealthy.
	p.setDNS(t, 0, 1, 2)
	waitValue(t, g, "a second applied Change", above(applied), "vigil_changes_total", with("result", "applied")...)
	waitValue(t, g, "target 2 healthy", equals(1), "vigil_target_healthy", with("address", p.addr(2))...)
	waitValue(t, g, "three resolved addresses", equals(3), "vigil_dns_addresses", up...)
	if v, _ := value(t, g, "vigil_targets", with("status", "unhealthy")...); v != 1 {
		t.Errorf("unhealthy targets = %v after the address set grew, want 1", v)
	}
	p.send(t, 40)
	waitValue(t, g, "picks of the new target", above(0), "vigil_picks_total", with("address", p.addr(2))...)

	// 4. DNS drops backend 0: it leaves the targets, is remembered, and its
	// pick series goes at the next scrape.
	p.setDNS(t, 1, 2)
	waitValue(t, g, "two live targets", equals(2), "vigil_targets", up...)
	waitValue(t, g, "one remembered target", equals(1), "vigil_targets_remembered", up...)
	waitValue(t, g, "two resolved addresses again", equals(2), "vigil_dns_addresses", up...)
	testutil.Eventually(t, 5*time.Second, "the departed target's pick series to go", func() bool {
		_, found := value(t, g, "vigil_picks_total", with("address", p.addr(0))...)
		return !found
	})

	// 5. DNS fails: queries and resolutions count the SERVFAIL; the
	// targets stay.
	p.dns.SetRcode(upstream+".", dns.RcodeServerFailure)
	waitValue(t, g, "SERVFAIL queries", above(0), "vigil_dns_queries_total", with("result", "servfail")...)
	waitValue(t, g, "failed resolutions", above(0), "vigil_dns_failures_total", with("reason", "servfail")...)
	if v, _ := value(t, g, "vigil_targets", up...); v != 2 {
		t.Errorf("targets = %v after a DNS failure, want 2 kept", v)
	}

	// The same figures through HTTP, in the text exposition format.
	body := p.scrape(t)
	for _, want := range []string{
		`vigil_targets{status="unhealthy",upstream="shop.test"} 1`,
		`vigil_status_transitions_total{to="unhealthy",upstream="shop.test"} 1`,
		`vigil_target_healthy{address="` + p.addr(2) + `",upstream="shop.test"} 1`,
		`vigil_dns_failures_total{reason="servfail",upstream="shop.test"}`,
		`# TYPE vigil_probe_duration_seconds histogram`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}

	// Unwatch removes every series of the upstream.
	p.col.Unwatch(upstream)
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "vigil_") && len(mf.GetMetric()) > 0 {
			t.Errorf("%s still has %d series after Unwatch", mf.GetName(), len(mf.GetMetric()))
		}
	}
}

// pickTransport sends each request to the address b picks, keeping the
// URL's host as the Host header, and ends the Call with the outcome, so
// that its Result is published.
type pickTransport struct {
	b  *balancer.Balancer
	rt *http.Transport
}

func (t *pickTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	call, err := t.b.PickCall()
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Host, out.URL.Host = req.URL.Host, call.Address.HostPort()
	resp, err := t.rt.RoundTrip(out)
	if err != nil {
		call.Done(balancer.ConnFailure)
		return nil, err
	}
	call.Done(balancer.HTTPStatus(resp.StatusCode))
	return resp, nil
}
