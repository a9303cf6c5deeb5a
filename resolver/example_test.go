package resolver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

func Example() {
	srv, err := dnstest.Start("")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	_ = srv.SetA("api.example", 1, "192.0.2.10", "192.0.2.11")

	bus := events.New()
	defer bus.Close()
	changes := make(chan resolver.Change, 8)
	defer events.Subscribe(bus, resolver.Topic("api.example"), func(c resolver.Change) { changes <- c })()

	src, err := resolver.NewSource(resolver.Config{
		Name:    "api.example",
		Port:    8080,
		Servers: []string{srv.Addr()},
		MinTTL:  10 * time.Millisecond,
	}, bus)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()

	c := <-changes
	fmt.Println("addresses:", c.Addresses)

	_ = srv.SetA("api.example", 1, "192.0.2.11", "192.0.2.12")
	c = <-changes // within the 1s TTL
	fmt.Println("added:", c.Added, "removed:", c.Removed)

	cancel()
	<-done
	// Output:
	// addresses: [api.example/192.0.2.10:8080 api.example/192.0.2.11:8080]
	// added: [api.example/192.0.2.12:8080] removed: [api.example/192.0.2.10:8080]
}

// A relative name resolves with a search list against explicit servers, on
// any port; State tells which candidate answered and is followed.
func ExampleConfig_search() {
	srv, err := dnstest.Start("") // a random port
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	_ = srv.SetA("api.svc.example", 30, "192.0.2.20")

	bus := events.New()
	defer bus.Close()
	changes := make(chan resolver.Change, 8)
	defer events.Subscribe(bus, resolver.Topic("api"), func(c resolver.Change) { changes <- c })()

	src, err := resolver.NewSource(resolver.Config{
		Name:    "api",
		Port:    8080,
		Family:  resolver.IPv4Only, // A records only; the zero value asks for A and AAAA
		Servers: []string{srv.Addr()},
		Search:  []string{"ns.example", "svc.example"},
	}, bus)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()
	<-changes
	st := src.State()
	fmt.Println("candidates:", st.Candidates)
	fmt.Println("following:", st.Following)
	fmt.Println("addresses:", st.Addresses)
	cancel()
	<-done
	// Output:
	// candidates: [api.ns.example api.svc.example api]
	// following: api.svc.example
	// addresses: [api.svc.example/192.0.2.20:8080]
}
