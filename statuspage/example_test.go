package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// The status page of one upstream, served on an admin address, read as
// JSON the way a tool reads it. A browser gets the same data as an HTML
// page that reloads itself.
func Example() {
	// api.internal resolves to two loopback backends.
	dns, _ := dnstest.Start("")
	defer dns.Close()
	bs, _ := backendtest.StartGroup(netip.MustParseAddr("127.0.77.41"), 2, nil)
	defer backendtest.CloseAll(bs)
	_ = dns.SetA("api.internal", 30, "127.0.77.41", "127.0.77.42")

	up, err := vigil.New(vigil.Config{
		Name:     "api.internal",
		Port:     bs[0].Port,
		Resolver: resolver.Config{Servers: []string{dns.Addr()}, Family: resolver.IPv4Only},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- up.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := up.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	// The page, on an admin port (a Client or a vigilgrpc.Builder would do
	// as well as statuspage.Of).
	page, err := statuspage.New(statuspage.Of(up), statuspage.Config{})
	if err != nil {
		log.Fatal(err)
	}
	admin := httptest.NewServer(page)
	defer admin.Close()

	req, _ := http.NewRequest(http.MethodGet, admin.URL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var p statuspage.Page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		log.Fatal(err)
	}
	for _, u := range p.Upstreams {
		fmt.Printf("%s: %d of %d healthy; DNS %v, TTL %.0fs\n", u.DNSName, u.Healthy, u.Targets, u.DNS.Types, u.DNS.Answer.TTLMs/1000)
		for _, a := range u.Addresses {
			fmt.Printf("  %s %s\n", netip.MustParseAddrPort(a.Address).Addr(), a.Status)
		}
	}
	// Output:
	// api.internal: 2 of 2 healthy; DNS [A], TTL 30s
	//   127.0.77.41 healthy
	//   127.0.77.42 healthy
}

// A fleet's roles on the page: one function that reads the fleet's view of
// each address. Here a fixed view stands in for the fleet's.
func ExampleWithRoles() {
	up, _ := vigil.New(vigil.Config{Name: "api.internal", Port: 8080})
	a := resolver.Address{IP: netip.MustParseAddr("10.0.0.1"), Port: 8080, Hostname: "api.internal"}
	up.Checker().SetTargets([]resolver.Address{a})

	roles := func(upstream string, addr resolver.Address) (statuspage.Role, bool) {
		// With a fleet: look addr up in its view of upstream.
		return statuspage.Role{Kind: statuspage.RoleProber, Rank: 1}, upstream == "api.internal"
	}
	h, _ := statuspage.New(statuspage.Of(up), statuspage.Config{}, statuspage.WithRoles(roles))
	r := h.Page().Upstreams[0].Addresses[0].Fleet
	fmt.Println(r.Kind, r.Rank)
	// Output: prober 1
}
