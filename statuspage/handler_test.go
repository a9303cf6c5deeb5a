package statuspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// idle returns an upstream of name that does not run, with the targets
// addrs set by hand: what it shows stays put.
func idle(t *testing.T, name string, addrs ...resolver.Address) *vigil.Upstream {
	t.Helper()
	u, err := vigil.New(vigil.Config{Name: name, Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	u.Checker().SetTargets(addrs)
	return u
}

// addrs returns n addresses of name from 10.first.0.1, port 80.
func addrs(name string, first, n int) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range out {
		out[i] = resolver.Address{IP: netip.AddrFrom4([4]byte{10, byte(first), byte(i / 250), byte(i%250 + 1)}), Port: 80, Hostname: resolver.NormalizeName(name)}
	}
	return out
}

// eject makes the checker of u eject a, by five passive 500s.
func eject(u *vigil.Upstream, a resolver.Address) { ejectFor(u, a, "") }

// ejectFor makes the checker of u eject a, by five passive failures for
// reason ("": 500s).
func ejectFor(u *vigil.Upstream, a resolver.Address, reason string) {
	for range 5 {
		if reason == "" {
			u.Checker().ReportHTTPStatus(a, http.StatusInternalServerError)
		} else {
			u.Checker().ReportFailure(a, reason)
		}
	}
}

// The JSON of a live upstream says what its parts know: the DNS answer,
// each address with its status and verdicts, the failing one with its
// reason, its requests in flight and its share of the picks.
func TestJSONOfLiveUpstream(t *testing.T) {
	w := newWorld(t, "127.0.77.1", "API.json.test.", 3, nil)
	h := newHandler(t, statuspage.Of(w.up), statuspage.Config{})
	w.bs[1].SetStatus(http.StatusInternalServerError)
	testutil.Eventually(t, 10*time.Second, "backend 1 unhealthy, the others probed", func() bool {
		ts := w.up.Checker().Targets()
		return len(ts) == 3 && statusOf(w.up, w.addr(1)) == health.Unhealthy &&
			!slices.ContainsFunc(ts, func(t health.Target) bool { return t.LastProbe.IsZero() })
	})
	// Two requests picked, one of them under way: only healthy addresses
	// are picked, so the failing one has none.
	done, err := w.up.Balancer().PickCall()
	if err != nil {
		t.Fatal(err)
	}
	done.Done(balancer.Success)
	underWay, err := w.up.Balancer().PickCall()
	if err != nil {
		t.Fatal(err)
	}
	defer underWay.Done(balancer.Success)
	before := time.Now().UTC()
	p, _ := pageOf(t, h)
	if p.Schema != statuspage.Schema || p.GeneratedAt.Before(before) || len(p.Upstreams) != 1 || p.UpstreamsOmitted != 0 {
		t.Fatalf("page: schema %q, generated %v (asked at %v), %d upstreams, %d omitted", p.Schema, p.GeneratedAt, before, len(p.Upstreams), p.UpstreamsOmitted)
	}
	u := p.Upstreams[0]
	if u.Name != w.up.String() || u.DNSName != "api.json.test" || u.Policy != "round-robin" {
		t.Errorf("upstream: name %q (want %q), dns_name %q, policy %q", u.Name, w.up.String(), u.DNSName, u.Policy)
	}
	if u.Targets != 3 || u.Healthy != 2 || u.Unhealthy != 1 || u.AddressesOmitted != 0 || len(u.Addresses) != 3 {
		t.Errorf("counts: %d targets, %d healthy, %d unhealthy, %d shown, %d omitted", u.Targets, u.Healthy, u.Unhealthy, len(u.Addresses), u.AddressesOmitted)
	}
	if st := w.up.Checker().Stats(); u.Checker.Version != st.Version || u.Checker.ProbesStarted == 0 || u.Checker.Transitions == 0 {
		t.Errorf("checker: %+v; the checker's stats: %+v", u.Checker, st)
	}
	d := u.DNS
	want := []string{w.bs[0].HostPort(), w.bs[1].HostPort(), w.bs[2].HostPort()}
	if d.Name != "api.json.test" || !reflect.DeepEqual(d.Types, []string{"A"}) || !d.Running || d.Addresses != 3 ||
		d.Following != "api.json.test" || d.Failures != 0 || d.Error != "" || d.ErrorAt != nil || d.Next == nil {
		t.Errorf("dns: %+v", d)
	}
	if a := d.Answer; a == nil || !reflect.DeepEqual(a.Addresses, want) || a.TTLMs != 1000 || a.TTLLeftMs < 0 || a.TTLLeftMs > 1000 {
		t.Errorf("dns answer: %+v, want addresses %v with a TTL of 1s", a, want)
	}
	for i, a := range u.Addresses {
		tgt, _ := w.up.Checker().Target(w.addr(i))
		if a.Address != want[i] || a.Hostname != "api.json.test" || a.Status != tgt.Status.String() {
			t.Errorf("address %d: %s %s %s; the checker has %s %s", i, a.Address, a.Hostname, a.Status, tgt.Address, tgt.Status)
		}
		if a.LastProbe == nil || a.LastProbe.At.IsZero() || a.LastChange == nil {
			t.Errorf("address %s: last probe %v, last change %v", a.Address, a.LastProbe, a.LastChange)
		}
		if a.Fleet != nil || a.Changes == nil {
			t.Errorf("address %s: without a fleet the role must be null, and changes a list: %+v", a.Address, a)
		}
		var wantInFlight, wantPicks int64
		if a.Address == underWay.Address.HostPort() {
			wantInFlight = 1
		}
		if a.Address == underWay.Address.HostPort() || a.Address == done.Address.HostPort() {
			wantPicks = map[bool]int64{true: 2, false: 1}[underWay.Address == done.Address]
		}
		switch {
		case a.Status == "unhealthy" && a.Picks != nil && *a.Picks != 0:
			t.Errorf("address %s: picked %d times while unhealthy", a.Address, *a.Picks)
		case a.InFlight != nil && *a.InFlight != wantInFlight, a.Picks != nil && *a.Picks != wantPicks,
			wantPicks > 0 && (a.Picks == nil || a.Share == nil || *a.Share != float64(wantPicks)/2):
			t.Errorf("address %s: in flight %v, picks %v, share %v; want %d, %d and %d/2", a.Address, deref(a.InFlight), deref(a.Picks), deref(a.Share), wantInFlight, wantPicks, wantPicks)
		}
	}
	sick := u.Addresses[1]
	if n := len(sick.Changes); n == 0 || sick.Changes[n-1].To != "unhealthy" || sick.Changes[n-1].Reason != sick.Reason {
		t.Errorf("the failing address's changes do not end with its turn to unhealthy: %+v", sick.Changes)
	}
	if p := sick.LastProbe; p == nil || p.Outcome == "" || p.Reason == "" || p.DurationMs == nil {
		t.Errorf("the failing address's last probe is not reported in full: %+v", p)
	}
	if sick.Status != "unhealthy" || sick.Reason != "HTTP 500 from GET /healthz" || sick.Active.Status != "unhealthy" || sick.Active.HTTPFailures < 2 ||
		sick.Passive.Status != "healthy" || sick.Ejection.Ejected {
		t.Errorf("the failing address: %+v", sick)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// objects lists the keys of every object of the JSON document, by where it
// sits; docs/status.md documents the same.
var objects = map[string][]string{
	"page":      {"schema", "generated_at", "upstreams", "upstreams_omitted"},
	"upstream":  {"name", "dns_name", "policy", "targets", "healthy", "unhealthy", "ejected", "checker", "dns", "addresses", "addresses_omitted", "remembered", "remembered_total"},
	"checker":   {"version", "changes_applied", "changes_ignored", "probes_started", "probes_completed", "probes_dropped", "probes_in_flight", "transitions", "ejections"},
	"dns":       {"name", "types", "running", "version", "addresses", "candidates", "following", "answer", "failures", "error", "error_at", "next"},
	"answer":    {"at", "ttl_ms", "ttl_left_ms", "addresses", "addresses_omitted"},
	"address":   {"address", "hostname", "weight", "priority", "status", "reason", "active", "passive", "ejection", "last_change", "last_probe", "in_flight", "picks", "share", "fleet", "changes"},
	"verdict":   {"status", "successes", "http_failures", "tcp_failures", "timeouts"},
	"ejection":  {"ejected", "until", "ejections", "probation"},
	"probe":     {"at", "duration_ms", "outcome", "reason"},
	"fleetRole": {"kind", "rank", "member", "reason", "age_ms", "disagrees"},
}

// keysOf returns the keys of the JSON object v, sorted.
func keysOf(t *testing.T, where string, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object: %v", where, v)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// The JSON schema is stable: every object has exactly the documented keys,
// all of them always present (null when unknown), and lists are lists.
func TestJSONSchema(t *testing.T) {
	name := "schema.test"
	as := addrs(name, 1, 2)
	u := idle(t, name, as...)
	eject(u, as[0])
	fleet := func(upstream string, a resolver.Address) (statuspage.Role, bool) {
		return statuspage.Role{Kind: statuspage.RoleFollower, Member: "pod-7", Reason: "HTTP 500", Age: 1500 * time.Millisecond}, a == as[0]
	}
	h := newHandler(t, statuspage.Of(u), statuspage.Config{}, statuspage.WithRoles(fleet))
	_, body := pageOf(t, h)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	check := func(kind string, v any) map[string]any {
		t.Helper()
		want := slices.Sorted(slices.Values(objects[kind]))
		if got := keysOf(t, kind, v); !slices.Equal(got, want) {
			t.Errorf("%s keys:\n got %v\nwant %v", kind, got, want)
		}
		return v.(map[string]any)
	}
	page := check("page", doc)
	up := check("upstream", page["upstreams"].([]any)[0])
	check("checker", up["checker"])
	dns := check("dns", up["dns"])
	if dns["answer"] != nil || dns["next"] != nil || dns["error_at"] != nil {
		t.Errorf("a source that never ran: answer, next and error_at must be null: %v", dns)
	}
	for _, list := range []string{"types", "candidates"} {
		if _, ok := dns[list].([]any); !ok {
			t.Errorf("dns.%s is not a list: %v", list, dns[list])
		}
	}
	for i, a := range up["addresses"].([]any) {
		addr := check("address", a)
		check("verdict", addr["active"])
		check("verdict", addr["passive"])
		ej := check("ejection", addr["ejection"])
		if _, ok := addr["changes"].([]any); !ok {
			t.Errorf("changes is not a list: %v", addr["changes"])
		}
		if i == 0 {
			role := check("fleetRole", addr["fleet"])
			if role["kind"] != "follower" || role["member"] != "pod-7" || role["age_ms"] != 1500.0 {
				t.Errorf("fleet role: %v", role)
			}
			if ej["ejected"] != true || ej["until"] == nil {
				t.Errorf("the ejected address's ejection: %v", ej)
			}
		} else if addr["fleet"] != nil {
			t.Errorf("an address without a role has fleet %v", addr["fleet"])
		}
	}
	if v, ok := up["checker"].(map[string]any)["version"].(string); !ok || v != "0" {
		t.Errorf("checker.version is %v, want the string \"0\"", up["checker"].(map[string]any)["version"])
	}

	// The nested objects that a page without probes lacks.
	p := statuspage.Page{Upstreams: []statuspage.Upstream{{
		DNS:       statuspage.DNS{Answer: &statuspage.Answer{}},
		Addresses: []statuspage.Address{{LastProbe: &statuspage.Probe{}}},
	}}}
	raw, _ := json.Marshal(p)
	_ = json.Unmarshal(raw, &doc)
	up = doc["upstreams"].([]any)[0].(map[string]any)
	check("answer", up["dns"].(map[string]any)["answer"])
	check("probe", up["addresses"].([]any)[0].(map[string]any)["last_probe"])
}

// Markup in a DNS name, a reason, a fleet member's name or the title is
// shown as text, never as markup.
func TestHTMLEscapesHostileText(t *testing.T) {
	const hostile = `<script>alert(1)</script>`
	name := hostile + `.x"onmouseover=alert(2).test`
	as := addrs(name, 2, 1)
	u := idle(t, name, as...)
	ejectFor(u, as[0], `<img src=x onerror=alert(3)>`)
	roles := func(string, resolver.Address) (statuspage.Role, bool) {
		return statuspage.Role{Kind: statuspage.RoleFollower, Member: `<iframe src="//evil">`, Reason: hostile}, true
	}
	h := newHandler(t, statuspage.Of(u), statuspage.Config{Title: `</title>` + hostile}, statuspage.WithRoles(roles))
	_, body := serve(t, h, http.MethodGet, "/", nil)
	for _, raw := range []string{"<script", "<img", "<iframe", `"onmouseover`, "</title><script"} {
		if strings.Contains(body, raw) {
			t.Errorf("the page holds %q unescaped", raw)
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(3)&gt;", "&lt;iframe"} {
		if !strings.Contains(body, escaped) {
			t.Errorf("the page lacks %q: the hostile text is not shown as text", escaped)
		}
	}
	// The JSON carries the text as it is, in a string.
	p, _ := pageOf(t, h)
	if p.Upstreams[0].DNSName != resolver.NormalizeName(name) {
		t.Errorf("dns_name %q", p.Upstreams[0].DNSName)
	}
}

// The page never shows a probe's header values, nor the credentials of a
// URL or a password in a reason or a DNS error.
func TestNoSecrets(t *testing.T) {
	const (
		header   = "Bearer header-secret-1"
		password = "hunter2"
		token    = "s3cr3t-token"
		natsPass = "nats-pass-9"
	)
	probed := newWorld(t, "127.0.77.11", "headers.secret.test", 1, func(c *vigil.Config) {
		c.Health.Active.Headers = http.Header{"Authorization": {header}, "X-Api-Key": {header}}
	})
	why := fmt.Sprintf("GET http://admin:%s@10.0.0.1/healthz?token=%s&x=1 failed; password=%s; Authorization: %s", password, token, password, header)
	reasons := newWorld(t, "127.0.77.21", "reasons.secret.test", 1, func(c *vigil.Config) {
		c.Health.Active.Prober = health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) {
			return health.ProbeTCPFailure, why
		})
	})
	roles := func(string, resolver.Address) (statuspage.Role, bool) {
		return statuspage.Role{Kind: statuspage.RoleLocal, Reason: "nats://member:" + natsPass + "@nats.internal:4222: authorization violation"}, true
	}
	h := newHandler(t, statuspage.Of(probed.up, reasons.up), statuspage.Config{}, statuspage.WithRoles(roles))
	testutil.Eventually(t, 10*time.Second, "the probes to run", func() bool {
		t1, ok1 := reasons.up.Checker().Target(reasons.addr(0))
		return ok1 && t1.Status == health.Unhealthy && probed.bs[0].Header("Authorization")[header] > 0
	})
	_, html := serve(t, h, http.MethodGet, "/", nil)
	_, js := serve(t, h, http.MethodGet, "/", acceptJSON)
	for _, page := range []struct{ kind, body string }{{"HTML", html}, {"JSON", js}} {
		for _, secret := range []string{"header-secret-1", password, token, natsPass} {
			if strings.Contains(page.body, secret) {
				t.Errorf("the %s page shows the secret %q", page.kind, secret)
			}
		}
		if !strings.Contains(page.body, "REDACTED") {
			t.Errorf("the %s page does not say what it redacted", page.kind)
		}
	}
	// What is not secret in the reason stays.
	p, _ := pageOf(t, h)
	if r := p.Upstreams[1].Addresses[0].Reason; !strings.Contains(r, "10.0.0.1/healthz") || !strings.Contains(r, "failed") {
		t.Errorf("the reason lost what it says: %q", r)
	}
}

// The page's size is bounded whatever the number of upstreams and
// addresses: it shows at most the configured numbers, those in trouble
// first, and says how many it left out.
func TestSizeBounded(t *testing.T) {
	make := func(ups, per int) statuspage.Upstreams {
		var us []*vigil.Upstream
		for i := range ups {
			name := fmt.Sprintf("u%03d.size.test", i)
			as := addrs(name, i%200, per)
			u := idle(t, name, as...)
			if i >= ups-2 { // the last two by name are in trouble: shown all the same
				eject(u, as[per-1])
			}
			u.Checker().SetTargets(as[:per-1]) // the last leaves: remembered
			u.Checker().SetTargets(as)
			us = append(us, u)
		}
		return statuspage.Of(us...)
	}
	cfg := statuspage.Config{MaxUpstreams: 4, MaxAddresses: 6, MaxRemembered: 2}
	small := newHandler(t, make(5, 10), cfg)
	big := newHandler(t, make(12, 40), cfg)
	p, _ := pageOf(t, big)
	if len(p.Upstreams) != 4 || p.UpstreamsOmitted != 8 {
		t.Fatalf("%d upstreams shown, %d omitted; want 4 and 8", len(p.Upstreams), p.UpstreamsOmitted)
	}
	var names []string
	for _, u := range p.Upstreams {
		names = append(names, u.DNSName)
		if len(u.Addresses) != 6 || u.AddressesOmitted != 34 || u.Targets != 40 {
			t.Errorf("%s: %d addresses shown, %d omitted of %d", u.DNSName, len(u.Addresses), u.AddressesOmitted, u.Targets)
		}
		if u.Unhealthy > 0 && !slices.ContainsFunc(u.Addresses, func(a statuspage.Address) bool { return a.Status == "unhealthy" }) {
			t.Errorf("%s: its unhealthy address is not among those shown", u.DNSName)
		}
		if !slices.IsSortedFunc(u.Addresses, func(a, b statuspage.Address) int {
			return netip.MustParseAddrPort(a.Address).Compare(netip.MustParseAddrPort(b.Address))
		}) {
			t.Errorf("%s: addresses out of order", u.DNSName)
		}
	}
	want := []string{"u000.size.test", "u001.size.test", "u010.size.test", "u011.size.test"}
	if !slices.Equal(names, want) {
		t.Errorf("upstreams shown %v, want %v (those in trouble, then the first by name, sorted)", names, want)
	}
	for _, kind := range []http.Header{nil, acceptJSON} {
		_, s := serve(t, small, http.MethodGet, "/", kind)
		_, b := serve(t, big, http.MethodGet, "/", kind)
		if len(b) > len(s)*11/10 {
			t.Errorf("Accept %v: the page grows with what it does not show: %d bytes for 5×10 addresses, %d for 12×40", kind, len(s), len(b))
		}
	}
	// Long free text is cut.
	as := addrs("long.size.test", 250, 1)
	u := idle(t, "long.size.test", as...)
	ejectFor(u, as[0], strings.Repeat("x", 100_000))
	lp, _ := pageOf(t, newHandler(t, statuspage.Of(u), statuspage.Config{}))
	if r := lp.Upstreams[0].Addresses[0].Reason; len(r) > 1000 || !strings.HasSuffix(r, "…") {
		t.Errorf("a 100 kB reason is shown in %d bytes", len(r))
	}
}

// GET and HEAD are served and change nothing; every other method is 405.
func TestMethods(t *testing.T) {
	name := "methods.test"
	as := addrs(name, 3, 3)
	u := idle(t, name, as...)
	eject(u, as[1])
	h := newHandler(t, statuspage.Of(u), statuspage.Config{})
	before, stats := u.Checker().Targets(), u.Checker().Stats()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
		resp, body := serve(t, h, m, "/", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || strings.Contains(body, name) {
			t.Errorf("%s: %s, Allow %q, body %q", m, resp.Status, resp.Header.Get("Allow"), body)
		}
	}
	for _, accept := range []http.Header{nil, acceptJSON} {
		resp, body := serve(t, h, http.MethodHead, "/", accept)
		if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Length") == "" {
			t.Errorf("HEAD: %s, %d bytes of body, Content-Length %q", resp.Status, len(body), resp.Header.Get("Content-Length"))
		}
		for range 3 {
			if resp, _ := serve(t, h, http.MethodGet, "/?refresh=0", accept); resp.StatusCode != http.StatusOK {
				t.Errorf("GET: %s", resp.Status)
			}
		}
	}
	if after := u.Checker().Targets(); !reflect.DeepEqual(after, before) {
		t.Errorf("GET changed the targets:\nbefore %+v\nafter  %+v", before, after)
	}
	if after := u.Checker().Stats(); after != stats {
		t.Errorf("GET changed the checker's stats: %+v, then %+v", stats, after)
	}
}

// The response is JSON when the request prefers it, HTML otherwise; both
// are uncached and sandboxed by their headers.
func TestNegotiation(t *testing.T) {
	h := newHandler(t, statuspage.Of(idle(t, "negotiation.test", addrs("negotiation.test", 4, 1)...)), statuspage.Config{})
	for _, c := range []struct {
		target, accept string
		json           bool
	}{
		{"/", "", false},
		{"/", "*/*", false},
		{"/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"/", "application/json", true},
		{"/", "application/json, */*", true},
		{"/", "application/*", true},
		{"/", "application/json;q=0.5, text/html", false},
		{"/", "text/html;q=0.5, application/json", true},
		{"/", "application/json;q=0", false},
		{"/", "garbage;;=", false},
		{"/?format=json", "text/html", true},
		{"/?format=html", "application/json", false},
	} {
		resp, body := serve(t, h, http.MethodGet, c.target, http.Header{"Accept": {c.accept}})
		ct := resp.Header.Get("Content-Type")
		isJSON := ct == "application/json" && json.Valid([]byte(body))
		isHTML := ct == "text/html; charset=utf-8" && strings.HasPrefix(body, "<!DOCTYPE html>")
		if c.json && !isJSON || !c.json && !isHTML {
			t.Errorf("GET %s, Accept %q: Content-Type %q; want JSON %v", c.target, c.accept, ct, c.json)
		}
		for k, v := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Vary": "Accept"} {
			if resp.Header.Get(k) != v {
				t.Errorf("GET %s, Accept %q: %s %q, want %q", c.target, c.accept, k, resp.Header.Get(k), v)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
	}
}

// The HTML page reloads itself every Refresh unless told otherwise, has
// no script, and draws a timeline for every address.
func TestHTMLPage(t *testing.T) {
	name := "html.test"
	as := addrs(name, 5, 3)
	u := idle(t, name, as...)
	eject(u, as[2])
	h := newHandler(t, statuspage.Of(u), statuspage.Config{Refresh: 1500 * time.Millisecond})
	for _, c := range []struct{ target, meta string }{
		{"/", `<meta http-equiv="refresh" content="2">`},
		{"/?refresh=7", `<meta http-equiv="refresh" content="7">`},
		{"/?refresh=0", ""},
	} {
		_, body := serve(t, h, http.MethodGet, c.target, nil)
		if got := strings.Contains(body, `http-equiv="refresh"`); got != (c.meta != "") || c.meta != "" && !strings.Contains(body, c.meta) {
			t.Errorf("GET %s: want %q in the page (refresh found: %v)", c.target, c.meta, got)
		}
		if strings.Contains(body, "<script") {
			t.Errorf("GET %s: the page has a script", c.target)
		}
		if n := strings.Count(body, `<svg class="tl"`); n != 3 {
			t.Errorf("GET %s: %d timelines for 3 addresses", c.target, n)
		}
		if !strings.Contains(body, `data-address="10.5.0.3:80"`) || !strings.Contains(body, `data-status="unhealthy"`) || !strings.Contains(body, "ejected until") {
			t.Errorf("GET %s: the ejected address is not shown so", c.target)
		}
	}
}

// An address that leaves is shown among the remembered ones, with the
// state the checker keeps for it.
func TestRemembered(t *testing.T) {
	name := "remembered.test"
	as := addrs(name, 6, 3)
	u := idle(t, name, as...)
	eject(u, as[1])
	h := newHandler(t, statuspage.Of(u), statuspage.Config{})
	if p, _ := pageOf(t, h); len(p.Upstreams[0].Remembered) != 0 || p.Upstreams[0].RememberedTotal != 0 {
		t.Fatalf("remembered before any departure: %+v", p.Upstreams[0].Remembered)
	}
	u.Checker().SetTargets([]resolver.Address{as[0]})
	p, _ := pageOf(t, h)
	up := p.Upstreams[0]
	if up.RememberedTotal != 2 || len(up.Remembered) != 2 || len(up.Addresses) != 1 {
		t.Fatalf("%d live, %d remembered listed of %d", len(up.Addresses), len(up.Remembered), up.RememberedTotal)
	}
	got := map[string]string{}
	for _, a := range up.Remembered {
		got[a.Address] = a.Status
	}
	if want := map[string]string{"10.6.0.2:80": "unhealthy", "10.6.0.3:80": "healthy"}; !reflect.DeepEqual(got, want) {
		t.Errorf("remembered %v, want %v", got, want)
	}
	_, body := serve(t, h, http.MethodGet, "/", nil)
	if !strings.Contains(body, `data-remembered="10.6.0.2:80"`) {
		t.Error("the HTML page does not list the remembered address")
	}
	u.Checker().SetTargets(as) // back, with its state
	if p, _ := pageOf(t, h); len(p.Upstreams[0].Remembered) != 0 || p.Upstreams[0].Addresses[1].Status != "unhealthy" {
		t.Errorf("after the return: remembered %+v, address %+v", p.Upstreams[0].Remembered, p.Upstreams[0].Addresses[1])
	}
}

// A Client, as Upstreams: the page shows the upstreams it runs.
func TestClientUpstreams(t *testing.T) {
	w := newWorld(t, "127.0.77.31", "client.test", 1, nil)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults:  vigil.Config{Resolver: resolver.Config{Servers: []string{w.dns.Addr()}, Family: resolver.IPv4Only}},
		Upstreams: []vigil.Config{{Name: "client.test", Port: w.bs[0].Port}, {Name: "other.client.test", Port: 81}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := newHandler(t, c, statuspage.Config{})
	p, _ := pageOf(t, h)
	var names []string
	for _, u := range p.Upstreams {
		names = append(names, u.Name)
	}
	if want := []string{fmt.Sprintf("client.test:%d", w.bs[0].Port), "other.client.test:81"}; !slices.Equal(names, want) {
		t.Errorf("upstreams %v, want %v", names, want)
	}
}

// Bad configuration is an error naming the field.
func TestConfigErrors(t *testing.T) {
	ups := statuspage.Of()
	for _, c := range []struct {
		cfg   statuspage.Config
		field string
	}{
		{statuspage.Config{Window: -time.Second}, "Window"},
		{statuspage.Config{MaxUpstreams: -1}, "MaxUpstreams"},
		{statuspage.Config{MaxAddresses: -1}, "MaxAddresses"},
		{statuspage.Config{MaxRemembered: -1}, "MaxRemembered"},
		{statuspage.Config{MaxChanges: -1}, "MaxChanges"},
	} {
		_, err := statuspage.New(ups, c.cfg)
		var ce *statuspage.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !errors.Is(err, statuspage.ErrInvalidConfig) ||
			!strings.HasPrefix(err.Error(), "statuspage: invalid config: "+c.field+": ") {
			t.Errorf("%+v: error %v, want a ConfigError for %s", c.cfg, err, c.field)
		}
	}
	if _, err := statuspage.New(nil, statuspage.Config{}); !errors.Is(err, statuspage.ErrInvalidConfig) {
		t.Errorf("nil Upstreams: %v", err)
	}
	h := newHandler(t, ups, statuspage.Config{Refresh: -1})
	if _, body := serve(t, h, http.MethodGet, "/", nil); strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "No upstream") {
		t.Error("a page with a negative Refresh reloads itself, or an empty page does not say it is empty")
	}
}
