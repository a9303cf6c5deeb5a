// Command demo shows why vigil exists.
//
// With no arguments it plays a story, 20 seconds long, on an in-process DNS
// server and five loopback backends, with traffic flowing through one
// vigil.New upstream: a backend starts answering 500; the service scales
// up; the failing backend leaves DNS, comes back still failing, recovers;
// then another backend's health check fails while its traffic succeeds.
// Each step is narrated as it happens: the DNS changes and the status
// changes the library publishes on its bus. A summary follows, counted at
// the backends: requests sent to a backend after the checker found it
// unhealthy, statuses reset by a DNS change, probes to addresses removed
// from DNS. The exit status is 0 when vigil kept all three at zero and
// found both failures, 1 otherwise, 2 for bad arguments.
//
//	demo [-duration 20s] [-compare] [-json] [-metrics addr] [-http addr]
//	demo -fleet [-duration 20s] [-json] [-http addr]
//	demo watch -name NAME [-type A|AAAA|IP|SRV] [-port 80] [-path /] [-dns host:port] [-interval 1s] [-json] [-http addr]
//
// -compare plays the same story, side by side, against the destroy-and-
// rebuild checker vigil replaces (internal/rebuild). -fleet plays a story of
// five clients sharing verdicts on an embedded NATS server, one of them with
// a broken path to a backend: the fleet outvotes it and reports it, where
// QuorumAny lets it take the backend out of others' traffic; it exits 0
// when the fleet behaved so. watch follows a
// real name until Ctrl-C. -http serves vigil's status page (statuspage) at
// http://addr/ meanwhile (with -fleet, the broken client's, with its fleet
// roles): open it in a browser to watch the story.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/vigil-go/vigil/statuspage"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "watch" {
		return runWatch(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: demo [-duration 20s] [-compare] [-json] [-metrics addr] [-http addr]\n       demo -fleet [-duration 20s] [-json] [-http addr]\n       demo watch -h")
		fs.PrintDefaults()
	}
	duration := fs.Duration("duration", 20*time.Second, "length of the story (4s to 1h); probe intervals scale with it")
	compare := fs.Bool("compare", false, "also play the story against the destroy-and-rebuild checker, side by side")
	jsonOut := fs.Bool("json", false, "print one JSON object per line, the summary last")
	metricsAddr := fs.String("metrics", "", "serve vigil's Prometheus metrics at http://`addr`/metrics while the story plays")
	httpAddr := fs.String("http", "", "serve vigil's status page at http://`addr`/ while the story plays")
	fleet := fs.Bool("fleet", false, "play the fleet story instead: five clients sharing verdicts on NATS JetStream, one with a broken path")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	case *duration < 4*time.Second || *duration > time.Hour:
		return usageError(fs, "-duration must be between 4s and 1h")
	case *fleet && (*compare || *metricsAddr != ""):
		return usageError(fs, "-fleet takes -duration, -json and -http only")
	}
	n := newNarrator(stdout, *jsonOut)
	var err error
	behaved := true
	if *fleet {
		var sum fleetSummary
		sum, err = playFleet(ctx, *duration, *httpAddr, n)
		behaved = err == nil && sum.behaved()
	} else {
		worlds := []builder{{"vigil", vigilPipeline}}
		if *compare {
			worlds = append(worlds, builder{"rebuild", baselinePipeline})
		}
		var sums []summary
		sums, err = playStory(ctx, *duration, worlds, *metricsAddr, *httpAddr, n)
		behaved = err == nil && sums[0].behaved()
	}
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
	}
	if err != nil || !behaved {
		return exitFail
	}
	return exitOK
}

// serveStatus serves the status page of ups, made with cfg and opts, at the
// root of addr until stop is called, and returns its URL.
func serveStatus(addr string, ups statuspage.Upstreams, cfg statuspage.Config, opts ...statuspage.Option) (url string, stop func(), err error) {
	page, err := statuspage.New(ups, cfg, opts...)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", page)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() {
		_ = srv.Shutdown(context.Background()) // waits for the pages being served
		<-done
	}, nil
}

// usageError reports a bad argument with the usage and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitUsage
}
