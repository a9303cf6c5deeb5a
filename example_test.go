package vigil_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// One upstream: its first request waits for the first resolution instead of
// failing, and goes to a healthy address.
func Example() {
	// A DNS server answering api.internal with two loopback backends.
	dns, _ := dnstest.Start("")
	defer dns.Close()
	bs, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.90.1"), 2, nil)
	defer backendtest.CloseAll(bs)
	_ = dns.SetA("api.internal", 5, "127.0.90.1", "127.0.90.2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	up, err := vigil.New(vigil.Config{
		Name:     "api.internal",
		Port:     bs[0].Port,
		Resolver: resolver.Config{Servers: []string{dns.Addr()}}, // default: /etc/resolv.conf
		Health:   health.Config{Active: health.Active{Path: "/healthz"}},
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

	cancel()
	fmt.Println(<-done)
	// Output:
	// 200 OK
	// <nil>
}

// A Client over two upstreams configured up front and one made from the
// template on its first request: each request goes to its host's healthy
// addresses; any other host to the base RoundTripper.
func ExampleNewClient() {
	dns, _ := dnstest.Start("")
	defer dns.Close()
	api, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.91.1"), 2, nil)
	defer backendtest.CloseAll(api)
	auth, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.91.11"), 1, nil)
	defer backendtest.CloseAll(auth)
	_ = dns.SetA("api.internal", 5, "127.0.91.1", "127.0.91.2")
	_ = dns.SetA("auth.internal", 5, "127.0.91.11")
	_ = dns.SetA("new.internal", 5, "127.0.91.11") // on auth's backend too
	servers := resolver.Config{Servers: []string{dns.Addr()}}

	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{
			{Name: "api.internal", Port: api[0].Port, Resolver: servers},
			{Name: "auth.internal", Port: auth[0].Port, Resolver: servers},
		},
		Template: &vigil.Config{Resolver: servers},
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
