// Command demo shows, live, why vigil exists.
//
// With no arguments it plays a 20-second story against an in-process DNS
// server and five loopback HTTP backends, through one upstream built by
// vigil.New (resolver.Source -> events.Bus -> health.Checker -> balancer,
// its Transport carrying the traffic), with traffic flowing:
//
//  1. steady state: the name resolves to four backends, all healthy;
//  2. one backend starts answering 500;
//  3. scale up: a fifth backend appears in DNS;
//  4. scale down: another leaves DNS;
//  5. the failing backend leaves DNS, still failing;
//  6. it comes back to DNS, still failing;
//  7. it recovers;
//  8. another backend's health check (its probe path) starts answering 500
//     while its traffic keeps succeeding: vigil's active verdict marks it
//     unhealthy, since the traffic's successes count in a separate, passive
//     verdict, and no request reaches it from then on.
//
// It ends with a summary counted at the backends: requests to unhealthy
// backends, requests to the backend whose health check fails after its
// detection, statuses reset by DNS changes, probes and requests to
// addresses removed from DNS, all zero, and whether every step showed what
// it should. -compare plays the same story against the destroy-and-rebuild
// checker that vigil replaces (internal/rebuild), side by side; it counts
// its traffic's outcomes on its probes' counters, as lua-resty-healthcheck
// does, so that in the last step the traffic's successes keep resetting
// the probes' failures and the failing health check is never detected.
//
//	demo [-duration 20s] [-speed 1] [-compare] [-json] [-rate 80] [-metrics 127.0.0.1:9090] [-log FILE]
//	demo watch -name NAME [-type A|AAAA|IP|SRV] [-port N] [-path /healthz] [-dns host:port] [-interval 1s] [-json] [-log FILE]
//
// Exit status: 0 when the story made its point (or watch ended by Ctrl-C),
// 1 when it did not or something failed, 2 for bad arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usageText = `usage:
  demo [flags]            play the story, with live traffic: a backend starts answering 500,
                          the service scales up and down, the failing backend leaves DNS,
                          comes back and recovers; then another backend's health check fails
                          while its traffic still succeeds (-compare: a checker whose
                          counters the traffic shares never sees it)
  demo watch -name NAME   follow a real name and its backends until Ctrl-C

flags of the story:
`

// storyOptions are the flags of the default run.
type storyOptions struct {
	duration time.Duration
	speed    float64
	compare  bool
	json     bool
	rate     int
	metrics  string // address to serve Prometheus metrics on; empty: none
	log      string // file to write vigil's own log to; empty: none
	fleet    bool   // play the fleet story instead (fleet.go)

	// newVigil builds vigil's world; nil means newVigilWorld. Tests put
	// other checkers in its place.
	newVigil func(sc scale, dns *dnstest.Server, name string, bs []*backendtest.Backend) (*world, error)
}

// run is the whole command, minus the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "watch":
			return runWatch(ctx, args[1:], stdout, stderr)
		default:
			fmt.Fprintf(stderr, "demo: unknown command %q\n", args[0])
			storyFlags(&storyOptions{}, stderr).Usage()
			return exitUsage
		}
	}
	var opts storyOptions
	fs := storyFlags(&opts, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	case !(opts.speed >= 0.1 && opts.speed <= 10): // NaN too
		return usageError(fs, "-speed must be between 0.1 and 10")
	case !(opts.duration.Seconds()/opts.speed >= 2 && opts.duration.Seconds()/opts.speed <= time.Hour.Seconds()):
		return usageError(fs, "the story's length, -duration divided by -speed, must be between 2s and 1h")
	case opts.rate < 1 || opts.rate > 1000:
		return usageError(fs, "-rate must be between 1 and 1000")
	case opts.metrics != "" && !validHostPort(opts.metrics):
		return usageError(fs, "-metrics must be host:port, e.g. 127.0.0.1:9090")
	}
	if opts.fleet {
		return runFleet(ctx, opts.speed, stdout, stderr)
	}
	return runStory(ctx, opts, stdout, stderr)
}

// storyFlags defines the default run's flags on a new set writing its
// usage to stderr.
func storyFlags(o *storyOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nflags of watch: demo watch -h\n")
	}
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of the story at -speed 1 (2s to 1h once divided by -speed); probe intervals and TTLs scale with it")
	fs.Float64Var(&o.speed, "speed", 1, "play the story this many times faster (0.1 to 10)")
	fs.BoolVar(&o.compare, "compare", false, "also play the story against the destroy-and-rebuild checker, side by side")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per event (the summary last)")
	fs.IntVar(&o.rate, "rate", 80, "requests per second sent through each pipeline")
	fs.StringVar(&o.metrics, "metrics", "", "serve vigil's Prometheus metrics on `addr` (e.g. 127.0.0.1:9090) at /metrics")
	fs.StringVar(&o.log, "log", "", "write vigil's own log (slog text lines, debug included) to `file`")
	fs.BoolVar(&o.fleet, "fleet", false, "play the fleet story instead (about 15s at -speed 1): clients sharing verdicts on NATS JetStream")
	return fs
}

// usageError reports a bad argument with the usage and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "demo: "+format+"\n", args...)
	fs.Usage()
	return exitUsage
}

// validHostPort reports whether s is "host:port" with a numeric port.
func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}
