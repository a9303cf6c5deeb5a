package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
)

// The story serves its metrics with -metrics, and they move as it runs: probes
// are counted, the failing backend shows up as an unhealthy target and a
// status transition, and requests are counted by outcome.
func TestStoryServesMetrics(t *testing.T) {
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-duration", "6s", "-metrics", "127.0.0.1:0"}, &out, &errOut)
	}()

	urlRE := regexp.MustCompile(`metrics: (http://\S+/metrics)`)
	var url string
	deadline := time.Now().Add(5 * time.Second)
	for url == "" {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics address printed; output:\n%s\nstderr: %s", out.String(), errOut.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}

	scrape := func() string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	sum := func(text, metric string) float64 {
		var total float64
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + `(\{[^}]*\})? (\S+)$`)
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s: %v", m[0], err)
			}
			total += v
		}
		return total
	}

	unhealthyRE := regexp.MustCompile(`(?m)^vigil_targets\{[^}]*status="unhealthy"[^}]*\} [1-9]`)
	transitionRE := regexp.MustCompile(`(?m)^vigil_status_transitions_total\{[^}]*to="unhealthy"[^}]*\} [1-9]`)
	first := scrape()
	probes := sum(first, "vigil_probes_total")
	seen := map[string]bool{}
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		text := scrape()
		if sum(text, "vigil_probes_total") > probes {
			seen["probes grow"] = true
		}
		if unhealthyRE.MatchString(text) {
			seen["an unhealthy target"] = true
		}
		if transitionRE.MatchString(text) {
			seen["a transition to unhealthy"] = true
		}
		if sum(text, "vigil_requests_total") > 0 {
			seen["requests counted"] = true
		}
		if len(seen) == 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"probes grow", "an unhealthy target", "a transition to unhealthy", "requests counted"} {
		if !seen[want] {
			t.Errorf("metrics never showed %s", want)
		}
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut.String(), out.String())
	}
}

func TestBadMetricsAddress(t *testing.T) {
	code, _, errOut := runDemo(t, "-metrics", "nonsense")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errOut)
	}
}

// close waits for a scrape in progress to end before it returns (and
// closes the collector the scrape reads).
func TestMetricsCloseWaitsForHandlers(t *testing.T) {
	sc := newScale(3*time.Second, 10)
	bus := events.New()
	defer bus.Close()
	u, err := vigil.New(vigilConfig(sc, "metrics.demo.test", 80, "127.0.0.1:53"), vigil.WithBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	m, err := serveMetrics("127.0.0.1:0", &world{bus: bus, checker: u.Checker()})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	m.mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		finished.Store(true)
	})
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get(strings.TrimSuffix(m.url, "/metrics") + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	<-started
	closed := make(chan struct{})
	go func() {
		m.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Error("close returned while a handler was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-closed
	if !finished.Load() {
		t.Error("close returned before the handler ended")
	}
	<-got
}

// Scrapes running while the story ends are over when run returns: no
// handler of the metrics server is left. The story lasts 3s, the shortest
// whose eight steps keep their timing under three scrapers hammering the
// server on two cores with the race detector.
func TestMetricsScrapesEndWithRun(t *testing.T) {
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-duration", "3s", "-metrics", "127.0.0.1:0"}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`metrics: (http://\S+/metrics)`)
	var url string
	for deadline := time.Now().Add(5 * time.Second); url == ""; time.Sleep(5 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics address printed; output:\n%s\nstderr: %s", out.String(), errOut.String())
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
			defer client.CloseIdleConnections()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					continue // the server is gone or going
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	code := <-done
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	close(stop)
	wg.Wait()
	if code != exitOK {
		t.Errorf("exit %d, stderr %q\n%s", code, errOut.String(), out.String())
	}
	for g := range strings.SplitSeq(stacks, "\n\n") {
		if strings.Contains(g, "vigil/metrics.") || strings.Contains(g, "promhttp.") || strings.Contains(g, "(*metricsServer).serve") {
			t.Errorf("a metrics handler outlived run:\n%s", g)
		}
	}
}
