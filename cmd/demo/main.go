// Command demo shows vigil following a DNS name live: it starts an
// in-process DNS server, changes the records of a name a few times, and
// prints every Change that a resolver.Source publishes as it follows the
// records' TTLs. It exits by itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

const name = "api.demo.test"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// step is one scripted change of the name's records.
type step struct {
	say string
	ips []string
}

var story = []step{
	{"three backends", []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}},
	{"scale up: a fourth backend", []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}},
	{"scale down: .12 leaves", []string{"127.0.0.11", "127.0.0.13", "127.0.0.14"}},
	{"same set, other order: no Change", []string{"127.0.0.14", "127.0.0.13", "127.0.0.11"}},
	{".12 comes back", []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}},
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	step := fs.Duration("step", 2500*time.Millisecond, "time between record changes")
	if err := fs.Parse(args); err != nil {
		return err
	}

	srv, err := dnstest.Start("")
	if err != nil {
		return err
	}
	defer srv.Close()
	const ttl = 1
	if err := srv.SetA(name, ttl, story[0].ips...); err != nil {
		return err
	}

	bus := events.New()
	defer bus.Close()
	start := time.Now()
	stamp := func() string { return fmt.Sprintf("%6.2fs", time.Since(start).Seconds()) }
	defer events.Subscribe(bus, events.NewTopic[resolver.Change](resolver.Topic(name).Name()), func(c resolver.Change) {
		fmt.Fprintf(out, "%s change v%d: %d addresses %s added %s removed %s\n",
			stamp(), c.Version, len(c.Addresses), ips(c.Addresses), ips(c.Added), ips(c.Removed))
	})()

	src, err := resolver.NewSource(resolver.Config{Name: name, Port: 8080, Servers: []string{srv.Addr()}}, bus)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()

	fmt.Fprintf(out, "%s dns: %s A %s (TTL %ds) on %s\n", stamp(), name, strings.Join(story[0].ips, " "), ttl, srv.Addr())
	for _, s := range story[1:] {
		time.Sleep(*step)
		if err := srv.SetA(name, ttl, s.ips...); err != nil {
			cancel()
			return err
		}
		fmt.Fprintf(out, "%s dns: %s (%s)\n", stamp(), s.say, strings.Join(s.ips, " "))
	}
	time.Sleep(*step)
	cancel()
	return <-done
}

// ips lists the addresses' IPs.
func ips(addrs []resolver.Address) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.IP.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}
