package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// watchOptions are the flags of demo watch.
type watchOptions struct {
	name     string
	typ      string
	port     uint
	path     string
	dns      string
	interval time.Duration
	json     bool
	log      string
}

// watchFlags defines watch's flags on a new set writing to stderr.
func watchFlags(o *watchOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("demo watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: demo watch -name NAME [-type A|AAAA|IP|SRV] [-port N] [-path /healthz] [-dns host:port] [-interval 1s] [-json] [-log FILE]\n\n"+
			"Follows NAME in DNS and probes every address it resolves to, through vigil.New, showing the live table until Ctrl-C.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.name, "name", "", "the DNS name to follow (required)")
	fs.StringVar(&o.typ, "type", "A", "record type: A, AAAA, IP (A and AAAA together, vigil's default) or SRV")
	fs.UintVar(&o.port, "port", 80, "port of the backends, for A and AAAA (SRV records carry their own)")
	fs.StringVar(&o.path, "path", "/", "HTTP path of the active probes")
	fs.StringVar(&o.dns, "dns", "", "DNS server host:port (default: the servers of /etc/resolv.conf)")
	fs.DurationVar(&o.interval, "interval", time.Second, "probe interval")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per event")
	fs.StringVar(&o.log, "log", "", "write vigil's own log (slog text lines, debug included) to `file`")
	return fs
}

// runWatch follows a real name until ctx ends and returns the exit code.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o watchOptions
	fs := watchFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	types := map[string]resolver.RecordType{"A": resolver.A, "AAAA": resolver.AAAA, "IP": resolver.IP, "SRV": resolver.SRV}
	typ, okType := types[strings.ToUpper(o.typ)]
	switch {
	case fs.NArg() > 0:
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	case o.name == "":
		return usageError(fs, "-name is required")
	case !okType:
		return usageError(fs, "-type must be A, AAAA, IP or SRV, not %q", o.typ)
	case o.port == 0 || o.port > 65535:
		return usageError(fs, "-port must be between 1 and 65535")
	case o.interval <= 0:
		return usageError(fs, "-interval must be positive")
	}
	logger, closeLog, err := openLog(o.log)
	if err != nil {
		fmt.Fprintln(stderr, "demo watch: -log:", err)
		return exitFail
	}
	defer closeLog()
	bus := events.New()
	defer bus.Close()
	u, err := vigil.New(watchConfig(o, typ), vigil.WithBus(bus), vigil.WithLogger(logger))
	if err != nil {
		return usageError(fs, "%v", err)
	}
	name := u.Name() // normalized: the topics' name
	chk := u.Checker()

	r := newRenderer(stdout, o.json)
	c := clock{start: time.Now()}
	var (
		mu    sync.Mutex
		set   []resolver.Address // the latest set from DNS
		known bool               // whether DNS has given a set yet
	)
	r.event(c.newEvent(evStart, "", "watching %s %s (probes GET %s every %s); Ctrl-C to stop", strings.ToUpper(o.typ), name, o.path, o.interval))
	defer events.Subscribe(bus, resolver.Topic(name), func(ch resolver.Change) {
		mu.Lock()
		set, known = ch.Addresses, true
		mu.Unlock()
		r.event(c.newEvent(evDNS, "", "dns: %s", describeChange(ch)))
	})()
	defer events.Subscribe(bus, resolver.FailureTopic(name), func(f resolver.Failure) {
		mu.Lock()
		n, ok := len(set), known
		mu.Unlock()
		kept := fmt.Sprintf("keeping the last known %d addresses", n)
		if !ok {
			kept = "no address known yet"
		}
		r.event(c.newEvent(evFailure, "", "DNS lookup failed: %v; %s, retrying in %s", f.Err, kept, f.Next.Round(time.Millisecond)))
	})()
	defer events.Subscribe(bus, health.StatusTopic(name), func(s health.StatusChange) {
		e := c.newEvent(evStatus, "", "%s %s", s.Address, describeStatusChange(s))
		e.Addr, e.From, e.To = s.Address.String(), s.From.String(), s.To.String()
		r.event(e)
	})()

	var wg sync.WaitGroup
	wg.Go(func() { _ = u.Run(ctx) })
	wg.Go(func() {
		start := time.Now()
		if err := u.WaitReady(ctx); err == nil {
			r.event(c.newEvent(evReady, "", "ready: a target is healthy, %s after the start", ms(time.Since(start))))
		} else if ctx.Err() != nil {
			r.event(c.newEvent(evReady, "", "stopped before any target was healthy (%v)", err))
		}
	})
	if r.live() {
		wg.Go(func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				mu.Lock()
				cur := set
				mu.Unlock()
				r.frame(watchTable(name, cur, chk))
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	return exitOK
}

// watchConfig is the upstream watch follows: o's name, record type, port
// and probes. A records alone for -type A.
func watchConfig(o watchOptions, typ resolver.RecordType) vigil.Config {
	cfg := vigil.Config{
		Name: o.name,
		Type: typ,
		Port: uint16(o.port),
		Health: health.Config{
			Active: health.Active{
				Path:      o.path,
				Healthy:   health.HealthyRules{Interval: o.interval},
				Unhealthy: health.UnhealthyRules{Interval: o.interval},
			},
		},
	}
	if o.dns != "" {
		cfg.Resolver.Servers = []string{o.dns}
	}
	if typ == resolver.A {
		cfg.Resolver.Family = resolver.IPv4Only // vigil's zero Type means A and AAAA
	}
	return cfg
}

// describeStatusChange says what changed in s and why.
func describeStatusChange(s health.StatusChange) string {
	text := fmt.Sprintf("%s -> %s", s.From, s.To)
	if s.From == s.To {
		text = fmt.Sprintf("still %s (active %s, passive %s)", s.To, s.Active, s.Passive)
	}
	if s.Reason != "" {
		text += ": " + s.Reason
	}
	return text
}

// watchTable formats the targets of chk and the addresses of the latest
// DNS set for the terminal.
func watchTable(name string, set []resolver.Address, chk *health.Checker) []string {
	now := time.Now()
	inDNS := map[resolver.Address]bool{}
	for _, a := range set {
		inDNS[a] = true
	}
	targets := chk.Targets()
	addrs := slices.Clone(set)
	for _, t := range targets {
		if !inDNS[t.Address] {
			addrs = append(addrs, t.Address)
		}
	}
	resolver.Sort(addrs)
	lines := []string{
		fmt.Sprintf("%s%s%s   %d addresses in DNS, %d targets", ansiBold, name, ansiReset, len(set), len(targets)),
		ansiDim + fmt.Sprintf("  %-40s %-4s %-10s %3s %4s %10s", "ADDRESS", "DNS", "STATUS", "OK", "FAIL", "LAST PROBE") + ansiReset,
	}
	for _, a := range addrs {
		t, ok := chk.Target(a)
		status, counters, last := "-", "  -    -", "-"
		if ok {
			status = t.Status.String()
			counters = fmt.Sprintf("%3d %4d", t.Successes, max(t.HTTPFailures, t.TCPFailures, t.Timeouts))
			if !t.LastProbe.IsZero() {
				last = ms(now.Sub(t.LastProbe)) + " ago"
			}
		}
		col := fmt.Sprintf("%-10s", status)
		switch status {
		case "healthy":
			col = ansiGreen + col + ansiReset
		case "unhealthy":
			col = ansiRed + col + ansiReset
		}
		dns := "no"
		if inDNS[a] {
			dns = "yes"
		}
		lines = append(lines, fmt.Sprintf("  %-40s %-4s %s %s %10s", a.HostPort(), dns, col, counters, last))
	}
	return lines
}
