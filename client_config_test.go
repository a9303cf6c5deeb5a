package vigil_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Bad configuration is an error naming the field, never a panic.
func TestClientConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   vigil.ClientConfig
		field string
	}{
		{"template probe path without slash", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "healthz"}}}}, "Template.Health.Active.Path"},
		{"template probe path with a space", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "/health z"}}}}, "Template.Health.Active.Path"},
		{"template probe path with a fragment", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Active: health.Active{Path: "/h#x"}}}}, "Template.Health.Active.Path"},
		{"template bad resolver", vigil.ClientConfig{Template: &vigil.Config{
			Resolver: resolver.Config{Servers: []string{"::::"}}}}, "Template.Resolver.Servers[0]"},
		{"template negative memory is fine, bad Initial is not", vigil.ClientConfig{Template: &vigil.Config{
			Health: health.Config{Initial: health.Status(9)}}}, "Template.Health.Initial"},
		{"upstream port 0", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "p.internal"}}}, "Upstreams[0].Port"},
		{"upstream without name", vigil.ClientConfig{Upstreams: []vigil.Config{{Port: 80}}}, "Upstreams[0].Name"},
		{"upstream name with a space", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "a b", Port: 80}}}, "Upstreams[0].Name"},
		{"upstream twice in other spellings", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "x.internal", Port: 80},
			{Name: "X.Internal.", Port: 80}}}, "Upstreams[1].Name"},
		{"defaults with a bad server", vigil.ClientConfig{Defaults: vigil.Config{
			Resolver: resolver.Config{Servers: []string{"::::"}}}}, "Defaults.Resolver.Servers[0]"},
		{"defaults with a bad path", vigil.ClientConfig{Defaults: vigil.Config{
			Health: health.Config{Active: health.Active{Path: "healthz"}}}}, "Defaults.Health.Active.Path"},
		{"defaults with a name", vigil.ClientConfig{Defaults: vigil.Config{Name: "x.internal"}}, "Defaults.Name"},
		{"defaults with a port", vigil.ClientConfig{Defaults: vigil.Config{Port: 8080}}, "Defaults.Port"},
		{"defaults and an entry that together are wrong", vigil.ClientConfig{
			Defaults:  vigil.Config{Resolver: resolver.Config{MaxTTL: 10 * time.Second}},
			Upstreams: []vigil.Config{{Name: "t.internal", Port: 80, Resolver: resolver.Config{MinTTL: time.Minute}}}},
			"Upstreams[0].Resolver.MinTTL"},
		{"default probe headers and an entry without a path", vigil.ClientConfig{
			Defaults:  vigil.Config{Health: health.Config{Active: health.Active{Headers: http.Header{"X-Probe": {"1"}}}}},
			Upstreams: []vigil.Config{{Name: "t.internal", Port: 80}}}, "Upstreams[0].Health.Active.Path"},
		{"default probe headers and a template without a path", vigil.ClientConfig{
			Defaults: vigil.Config{Health: health.Config{Active: health.Active{Headers: http.Header{"X-Probe": {"1"}}}}},
			Template: &vigil.Config{}}, "Template.Health.Active.Path"},
		{"upstream bad probe header", vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "h.internal", Port: 80,
			Health: health.Config{Active: health.Active{Path: "/h", Headers: http.Header{"Bad Name": {"v"}}}}}}}, "Upstreams[0].Health.Active.Headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic: %v", p)
				}
			}()
			c, err := vigil.NewClient(tc.cfg)
			if c != nil {
				defer c.Close()
			}
			var ce *vigil.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, vigil.ErrInvalidConfig) {
				t.Fatalf("NewClient: %v; want a *ConfigError for %s", err, tc.field)
			}
		})
	}
}

// Defaults reach every entry of Upstreams and the Template: the DNS
// servers given once serve both.
func TestClientDefaultsServeEveryUpstream(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.95.1", 1)
	_ = srv.SetA("listed.internal", 60, ips(bs)...)
	_ = srv.SetA("new.internal", 60, ips(bs)...)
	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults:  vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		Upstreams: []vigil.Config{{Name: "listed.internal", Port: bs[0].Port}},
		Template:  &vigil.Config{},
		Base:      &refusingBase{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"listed.internal", "new.internal"} {
		if code, err := get(t, c.Client, fmt.Sprintf("http://%s:%d/", name, bs[0].Port)); err != nil || code != 200 {
			t.Fatalf("GET %s: %d, %v", name, code, err)
		}
	}
}

// A field an entry sets wins; one it leaves zero takes the Defaults' value,
// nested structs field by field; a slice is one value.
func TestClientDefaultsFieldByField(t *testing.T) {
	used, unused := dnsServer(t), dnsServer(t)
	bs := backends(t, "127.0.95.11", 1)
	_ = used.SetA("own.internal", 60, ips(bs)...)
	defaults := vigil.Config{
		Resolver: resolver.Config{Servers: []string{unused.Addr()}, Timeout: 3 * time.Second},
		Health: health.Config{Memory: 7, Active: health.Active{
			Path:    "/healthz",
			Healthy: health.HealthyRules{Interval: time.Hour, Successes: 4},
		}},
	}
	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults: defaults,
		Upstreams: []vigil.Config{
			{Name: "plain.internal", Port: 80},
			{Name: "own.internal", Port: bs[0].Port,
				Resolver: resolver.Config{Servers: []string{used.Addr()}},
				Health: health.Config{Active: health.Active{
					Path:      "/ready",
					Healthy:   health.HealthyRules{Successes: 1},
					Unhealthy: health.UnhealthyRules{HTTPFailures: 9},
				}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defaults.Health.Active.Path = "/changed" // the Client keeps its own copy

	plain, _ := c.Upstream("plain.internal:80")
	own, _ := c.Upstream(fmt.Sprintf("own.internal:%d", bs[0].Port))
	if plain == nil || own == nil {
		t.Fatalf("upstreams: %v", c.Upstreams())
	}
	p := plain.Checker().Config()
	if p.Active.Path != "/healthz" || p.Active.Healthy.Interval != time.Hour || p.Active.Healthy.Successes != 4 || p.Memory != 7 {
		t.Errorf("an entry without health settings: %+v", p.Active)
	}
	o := own.Checker().Config()
	if o.Active.Path != "/ready" || o.Active.Healthy.Successes != 1 || o.Active.Unhealthy.HTTPFailures != 9 ||
		o.Active.Healthy.Interval != time.Hour || o.Memory != 7 {
		t.Errorf("an entry with some health settings: %+v", o.Active)
	}
	// Its own servers replace the Defaults' (a slice is one value).
	if code, err := get(t, c.Client, fmt.Sprintf("http://own.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("GET own.internal: %d, %v", code, err)
	}
	if n := unused.QueriesFor("own.internal", dns.TypeA); n != 0 {
		t.Errorf("the Defaults' server was asked %d times for a name whose entry has its own", n)
	}
}

// Client.Upstream finds an upstream by its name alone on any port; by
// name and port exactly; and none by a bare name that several ports share.
func TestClientUpstreamByName(t *testing.T) {
	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults: vigil.Config{Resolver: resolver.Config{Servers: []string{dnsServer(t).Addr()}}},
		Upstreams: []vigil.Config{
			{Name: "api.internal", Port: 8080},
			{Name: "two.internal", Port: 8080},
			{Name: "two.internal", Port: 9090},
			{Name: "_svc._tcp.srv.internal", Type: resolver.SRV},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		hostport, want string // want: the upstream's String(); "" none
	}{
		{"api.internal", "api.internal:8080"},
		{"API.Internal.", "api.internal:8080"},
		{"api.internal:8080", "api.internal:8080"},
		{"api.internal:80", ""},
		{"api.internal:0", ""},
		{"api.internal:x", ""},
		{"two.internal:9090", "two.internal:9090"},
		{"two.internal", ""},
		{"_svc._tcp.srv.internal", "_svc._tcp.srv.internal"},
		{"_svc._tcp.srv.internal:443", "_svc._tcp.srv.internal"},
		{"other.internal", ""},
	} {
		u, ok := c.Upstream(tc.hostport)
		got := ""
		if ok {
			got = u.String()
		}
		if got != tc.want || ok != (u != nil) {
			t.Errorf("Upstream(%q) = %q, %v; want %q", tc.hostport, got, ok, tc.want)
		}
	}
}

// The upstreams made from the template are capped (by default too): past
// the cap, a request for a new host fails with an error naming the limit,
// while hosts that have an upstream are served as before. Names that do not
// resolve count: they run until idle like any other.
func TestClientTemplateLimit(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.95.21", 1)
	_ = srv.SetA("kept.internal", 60, ips(bs)...)
	for _, tc := range []struct {
		name  string
		limit int
		want  int
	}{
		{"set", 3, 3},
		{"default", 0, vigil.DefaultMaxTemplateUpstreams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testutil.Buffer
			c, err := vigil.NewClient(vigil.ClientConfig{
				Template:             &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
				MaxTemplateUpstreams: tc.limit,
				Base:                 &refusingBase{},
			}, vigil.WithLogger(newLogger(&logs)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			kept := fmt.Sprintf("http://kept.internal:%d/", bs[0].Port)
			if code, err := get(t, c.Client, kept); err != nil || code != 200 {
				t.Fatalf("GET %s: %d, %v", kept, code, err)
			}
			for i := 1; i < tc.want; i++ { // NXDOMAIN, each
				if _, err := get(t, c.Client, fmt.Sprintf("http://attacker-%d.example/", i)); err == nil || !errors.Is(err, resolver.ErrNXDomain) {
					t.Fatalf("a name without records: %v", err)
				}
			}
			_, err = get(t, c.Client, "http://one-too-many.example/")
			if !errors.Is(err, vigil.ErrTooManyUpstreams) || !strings.Contains(err.Error(), "MaxTemplateUpstreams") ||
				!strings.Contains(err.Error(), "one-too-many.example") {
				t.Fatalf("a new host past the limit: %v; want ErrTooManyUpstreams naming the host and the limit", err)
			}
			if n := len(c.Upstreams()); n != tc.want {
				t.Fatalf("%d upstreams run, want %d", n, tc.want)
			}
			if code, err := get(t, c.Client, kept); err != nil || code != 200 {
				t.Fatalf("a host with an upstream, past the limit: %d, %v", code, err)
			}
			if !strings.Contains(logs.String(), `"limit":`+fmt.Sprint(tc.want)) {
				t.Errorf("no log line names the limit: %s", logs.String())
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		c, err := vigil.NewClient(vigil.ClientConfig{
			Template:             &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
			MaxTemplateUpstreams: -1,
			Base:                 &refusingBase{},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range vigil.DefaultMaxTemplateUpstreams + 1 {
			if _, err := get(t, c.Client, fmt.Sprintf("http://many-%d.example/", i)); errors.Is(err, vigil.ErrTooManyUpstreams) {
				t.Fatalf("request %d without a limit: %v", i, err)
			}
		}
	})
}

// The Client's log lines say which upstream and why: made from the
// template for a host's first request; refused past the limit.
func TestClientLogsSayWhy(t *testing.T) {
	srv := dnsServer(t)
	bs := backends(t, "127.0.95.31", 1)
	_ = srv.SetA("logged.internal", 60, ips(bs)...)
	var logs testutil.Buffer
	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:             &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}},
		MaxTemplateUpstreams: 1,
		Base:                 &refusingBase{},
	}, vigil.WithLogger(newLogger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, c.Client, fmt.Sprintf("http://logged.internal:%d/", bs[0].Port)); err != nil || code != 200 {
		t.Fatalf("GET: %d, %v", code, err)
	}
	_, _ = get(t, c.Client, "http://refused.internal/")
	_ = c.Close()
	want := map[string][]string{
		"vigil: upstream started from the template":                              {"upstream", "reason"},
		"vigil: new hosts refused: the template's upstreams reached their limit": {"host", "limit", "setting"},
		"vigil: upstream stopped":                                                {"upstream", "reason"},
	}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		keys, ok := want[fmt.Sprint(m["msg"])]
		if !ok {
			continue
		}
		for _, k := range keys {
			if m[k] == nil || m[k] == "" {
				t.Errorf("%q has no %s: %s", m["msg"], k, line)
			}
		}
		delete(want, fmt.Sprint(m["msg"]))
	}
	for msg := range want {
		t.Errorf("no log line %q", msg)
	}
}
