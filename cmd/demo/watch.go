package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/statuspage"
)

// runWatch follows a real name through vigil.New, narrating its DNS changes
// and failures and its addresses' status changes (and serving its status
// page with -http), until ctx ends (Ctrl-C); it returns the exit code.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: demo watch -name NAME [-type A|AAAA|IP|SRV] [-port 80] [-path /] [-dns host:port] [-interval 1s] [-json] [-http addr]")
		fs.PrintDefaults()
	}
	name := fs.String("name", "", "the DNS name to follow (required)")
	typ := fs.String("type", "A", "record type: A, AAAA, IP (A and AAAA) or SRV")
	port := fs.Uint("port", 80, "port of the backends for A and AAAA (SRV records carry their own)")
	path := fs.String("path", "/", "HTTP path of the probes")
	server := fs.String("dns", "", "DNS server host:port (default: those of /etc/resolv.conf)")
	interval := fs.Duration("interval", time.Second, "probe interval")
	jsonOut := fs.Bool("json", false, "print one JSON object per line")
	httpAddr := fs.String("http", "", "serve vigil's status page at http://`addr`/")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	types := map[string]resolver.RecordType{"A": resolver.A, "AAAA": resolver.AAAA, "IP": resolver.IP, "SRV": resolver.SRV}
	rt, okType := types[strings.ToUpper(*typ)]
	switch {
	case fs.NArg() > 0:
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	case *name == "":
		return usageError(fs, "-name is required")
	case !okType:
		return usageError(fs, "-type must be A, AAAA, IP or SRV, not %q", *typ)
	case *port == 0 || *port > 65535:
		return usageError(fs, "-port must be between 1 and 65535")
	case *interval <= 0:
		return usageError(fs, "-interval must be positive")
	}
	cfg := vigil.Config{Name: *name, Type: rt, Port: uint16(*port), Health: health.Config{Active: health.Active{
		Path:      *path,
		Healthy:   health.HealthyRules{Interval: *interval},
		Unhealthy: health.UnhealthyRules{Interval: *interval},
	}}}
	if *server != "" {
		cfg.Resolver.Servers = []string{*server}
	}
	if rt == resolver.A {
		cfg.Resolver.Family = resolver.IPv4Only
	}
	bus := events.New()
	defer bus.Close()
	u, err := vigil.New(cfg, vigil.WithBus(bus))
	if err != nil {
		return usageError(fs, "%v", err)
	}
	n := newNarrator(stdout, *jsonOut)
	n.say("", "watching %s %s: probes GET %s every %s; Ctrl-C to stop", strings.ToUpper(*typ), u.Name(), *path, *interval)
	if *httpAddr != "" {
		url, stop, err := serveStatus(*httpAddr, statuspage.Of(u), statuspage.Config{Refresh: 2 * time.Second})
		if err != nil {
			fmt.Fprintln(stderr, "demo watch: -http:", err)
			return exitFail
		}
		defer stop()
		n.say("", "status page: %s", url)
	}
	answered := make(chan struct{}) // closed once DNS gave a set, and it was printed
	var once sync.Once
	defer events.Subscribe(bus, resolver.Topic(u.Name()), func(c resolver.Change) {
		n.say("", "dns: %s", describeChange(c, resolver.Address.HostPort))
		once.Do(func() { close(answered) })
	})()
	defer events.Subscribe(bus, resolver.FailureTopic(u.Name()), func(f resolver.Failure) {
		n.say("", "dns: lookup failed: %v; retrying in %s", f.Err, ms(f.Next))
	})()
	defer events.Subscribe(bus, health.StatusTopic(u.Name()), func(s health.StatusChange) {
		n.say("", "%s %s -> %s: %s", s.Address, s.From, s.To, describeStatus(s))
	})()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = u.Run(ctx) })
	start := time.Now()
	err = u.WaitReady(ctx)
	if err == nil {
		select { // WaitReady may return before the DNS answer was printed
		case <-answered:
			n.say("", "ready: a target is healthy, %s after the start", ms(time.Since(start)))
		case <-ctx.Done():
		}
	} else {
		n.say("", "stopped before any target was healthy: %v", err)
	}
	<-ctx.Done()
	return exitOK
}
