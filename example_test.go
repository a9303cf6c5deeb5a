package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// One upstream, as the README's quickstart has it, against backends with
// no route at "/": with no check named, each address is probed with a TCP
// connect. The first request waits for the first resolution instead of
// failing, and goes to a healthy address.
func Example() {
	// A DNS server answering api.internal with two loopback backends that
	// answer 404 at "/".
	dns, _ := dnstest.Start("")
	defer dns.Close()
	bs, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.90.1"), 2, nil)
	defer backendtest.CloseAll(bs)
	for _, b := range bs {
		b.SetPathStatus("/", 404)
	}
	_ = dns.SetA("api.internal", 5, "127.0.90.1", "127.0.90.2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	up, err := vigil.New(vigil.Config{
		Name:     "api.internal",
		Port:     bs[0].Port,
		Resolver: resolver.Config{Servers: []string{dns.Addr()}}, // default: /etc/resolv.conf
	})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- up.Run(ctx) }()

	client := &http.Client{Transport: up.Transport(nil)}
	resp, err := client.Get(fmt.Sprintf("http://api.internal:%d/v1/items", bs[0].Port))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println("probe:", up.Checker().Config().Active.Type)

	cancel()
	fmt.Println(<-done)
	// Output:
	// 200 OK
	// probe: tcp
	// <nil>
}

// A Client over two upstreams configured up front and one made from the
// template on its first request, as the README's quickstart has it: each
// request goes to its host's healthy addresses; any other host to the base
// RoundTripper.
func ExampleNewClient() {
	dns, _ := dnstest.Start("")
	defer dns.Close()
	api, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.91.1"), 2, nil)
	defer backendtest.CloseAll(api)
	auth, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.91.11"), 1, nil)
	defer backendtest.CloseAll(auth)
	for _, b := range append(api, auth...) {
		b.SetPathStatus("/", 404) // no route at "/"
	}
	_ = dns.SetA("api.internal", 5, "127.0.91.1", "127.0.91.2")
	_ = dns.SetA("auth.internal", 5, "127.0.91.11")
	_ = dns.SetA("new.internal", 5, "127.0.91.11") // on auth's backend too

	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults: vigil.Config{Resolver: resolver.Config{Servers: []string{dns.Addr()}}},
		Upstreams: []vigil.Config{
			{Name: "api.internal", Port: api[0].Port},
			{Name: "auth.internal", Port: auth[0].Port},
		},
		Template: &vigil.Config{},
		Hosts:    func(host string) bool { return strings.HasSuffix(host, ".internal") },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, u := range []string{
		fmt.Sprintf("http://api.internal:%d/v1/items", api[0].Port),
		fmt.Sprintf("http://auth.internal:%d/token", auth[0].Port),
		fmt.Sprintf("http://new.internal:%d/hello", auth[0].Port),
	} {
		resp, err := c.Get(u)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("requests for /token at auth:", auth[0].Paths()["/token"])
	fmt.Println("upstreams:", len(c.Upstreams()))
	// Output:
	// 200 OK
	// 200 OK
	// 200 OK
	// requests for /token at auth: 1
	// upstreams: 3
}

// Settings every upstream shares are given once, in Defaults: each entry
// (and the Template) takes the Defaults' value for every field it leaves
// at zero, field by field, and keeps the fields it sets.
func ExampleClientConfig_defaults() {
	dns, _ := dnstest.Start("")
	defer dns.Close()

	c, err := vigil.NewClient(vigil.ClientConfig{
		Defaults: vigil.Config{
			Resolver: resolver.Config{Servers: []string{dns.Addr()}},
			Health: health.Config{Active: health.Active{
				Path:    "/healthz",
				Healthy: health.HealthyRules{Interval: 5 * time.Second},
			}},
		},
		Upstreams: []vigil.Config{
			{Name: "api.internal", Port: 8080},
			{Name: "auth.internal", Port: 9000, Health: health.Config{Active: health.Active{Path: "/ready"}}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, name := range []string{"api.internal", "auth.internal"} {
		u, _ := c.Upstream(name)
		a := u.Checker().Config().Active
		fmt.Println(u, a.Type, a.Path, a.Healthy.Interval)
	}

	// Errors name the field where it was given.
	_, err = vigil.NewClient(vigil.ClientConfig{Defaults: vigil.Config{Resolver: resolver.Config{Servers: []string{"dns..example:53"}}}})
	var ce *vigil.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
	}
	// Output:
	// api.internal:8080 http /healthz 5s
	// auth.internal:9000 http /ready 5s
	// Defaults.Resolver.Servers[0]
}

// A Client with a Template makes an upstream for each new host a request
// names; MaxTemplateUpstreams caps how many run at once. Restrict the
// Template with Hosts when URLs come from outside.
func ExampleClientConfig_maxTemplateUpstreams() {
	dns, _ := dnstest.Start("")
	defer dns.Close()
	bs, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.91.21"), 1, nil)
	defer backendtest.CloseAll(bs)
	_ = dns.SetA("first.internal", 5, "127.0.91.21")
	_ = dns.SetA("second.internal", 5, "127.0.91.21")

	c, err := vigil.NewClient(vigil.ClientConfig{
		Template:             &vigil.Config{Resolver: resolver.Config{Servers: []string{dns.Addr()}}},
		Hosts:                func(host string) bool { return strings.HasSuffix(host, ".internal") },
		MaxTemplateUpstreams: 1,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, host := range []string{"first.internal", "second.internal"} {
		resp, err := c.Get(fmt.Sprintf("http://%s:%d/", host, bs[0].Port))
		if err != nil {
			fmt.Println(host, errors.Is(err, vigil.ErrTooManyUpstreams))
			continue
		}
		resp.Body.Close()
		fmt.Println(host, resp.Status)
	}
	// Output:
	// first.internal 200 OK
	// second.internal true
}

// The README's quickstart snippets compile pasted on their own: each is a
// whole program, built against this module.
func TestReadmeQuickstartCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Quickstart\n")
	if start < 0 {
		t.Fatal("README.md has no Quickstart section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	snippets := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(snippets) < 2 {
		t.Fatalf("%d Go snippets in the Quickstart section, want 2", len(snippets))
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	replace := map[string]string{}
	var pkgs []string
	for i, s := range snippets {
		file := filepath.Join(tmp, fmt.Sprintf("snippet%d.go", i))
		if err := os.WriteFile(file, []byte(s[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		// A package that exists only in the overlay: nothing is written
		// into the module.
		dir := fmt.Sprintf("internal/readme-quickstart-%d", i)
		replace[filepath.Join(root, dir, "main.go")] = file
		pkgs = append(pkgs, "./"+dir)
	}
	var overlay strings.Builder
	overlay.WriteString(`{"Replace":{`)
	sep := ""
	for k, v := range replace {
		fmt.Fprintf(&overlay, "%s%q:%q", sep, k, v)
		sep = ","
	}
	overlay.WriteString("}}")
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayFile, []byte(overlay.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, append([]string{"build", "-overlay", overlayFile}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's Quickstart snippets do not compile: %v\n%s", err, out)
	}
}

// Two upstreams of one name, one after the other, given one Memory: the
// second starts from what the first found. Its backend at 127.0.104.2
// fails its health check; the new upstream holds it unhealthy before any
// probe of its own, and its requests go to the healthy one.
func ExampleWithMemory() {
	dns, _ := dnstest.Start("")
	defer dns.Close()
	bs, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.104.1"), 2, nil)
	defer backendtest.CloseAll(bs)
	bs[1].SetPathStatus("/healthz", 500)
	_ = dns.SetA("api.internal", 60, "127.0.104.1", "127.0.104.2")
	bad := bs[1].Address("api.internal")

	mem := health.NewMemory(0) // shared by every upstream given it
	cfg := vigil.Config{
		Name:     "api.internal",
		Port:     bs[0].Port,
		Resolver: resolver.Config{Servers: []string{dns.Addr()}},
		Health: health.Config{Active: health.Active{
			Path:      "/healthz",
			Unhealthy: health.UnhealthyRules{HTTPFailures: 1},
		}},
	}
	first, err := vigil.New(cfg, vigil.WithMemory(mem))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- first.Run(ctx) }()
	for first.Checker().Status(bad) != health.Unhealthy {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done // its Run returned: its targets' state is in mem

	next, err := vigil.New(cfg, vigil.WithMemory(mem))
	if err != nil {
		log.Fatal(err)
	}
	t, _ := next.Checker().Remembered(bad) // what it will start from
	fmt.Println("remembered:", t.Status, t.Reason)

	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	go func() { done <- next.Run(ctx) }()
	client := &http.Client{Transport: next.Transport(nil)}
	for range 4 {
		resp, err := client.Get(fmt.Sprintf("http://api.internal:%d/", bs[0].Port))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	fmt.Println("requests to the failing backend:", bs[1].Paths()["/"])
	stop()
	fmt.Println(<-done)
	// Output:
	// remembered: unhealthy HTTP 500 from GET /healthz
	// requests to the failing backend: 0
	// <nil>
}
