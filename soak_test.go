package vigil_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// The soak's world: names, backends and how fast things change.
const (
	soakNames      = 100 // template upstreams, coming and going through idle stops
	soakBackends   = 12  // each name resolves to soakPerName of them
	soakPerName    = 3
	soakMaxFailing = 4  // backends failing at once
	soakWindow     = 20 // names in use at once; the window slides, so the others go idle
	soakWorkers    = 4
	soakIdle       = 300 * time.Millisecond
)

// Bounds of the soak's resources, from one quiet moment (traffic stopped,
// every template upstream stopped) after a warm-up to the same moment at the
// end: nothing may grow with the soak's length.
const (
	soakGoroutineSlack = 20       // goroutines that may differ between the two moments
	soakFDSlack        = 16       // open descriptors that may differ (keep-alive connections closing late)
	soakHeapSlack      = 16 << 20 // bytes of live heap (the memory of departed addresses filling up)
)

// TestSoakClient runs a whole Client for VIGIL_SOAK (a duration; 3s by
// default): 100 upstreams made from its template come and go through idle
// stops, DNS answers churn, backends flap and fail their traffic, and a
// fleet member joins and leaves an upstream the Client shares on an
// embedded NATS server. From a quiet moment after a warm-up to the same
// moment at the end, goroutines, open descriptors, live heap and the bus
// stay flat (bounds above); no request is sent to an address after the
// checker of its upstream said it was unhealthy while it still fails; and
// the state of a name outlives its upstream's idle stop (a failing address
// stays unhealthy when the upstream comes back).
func TestSoakClient(t *testing.T) {
	length := 3 * time.Second
	if v := os.Getenv("VIGIL_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VIGIL_SOAK=%q: %v", v, err)
		}
		length = d
	}
	w := newSoakWorld(t)
	w.play(length/4, "warm-up")
	before := w.quiet(t)
	peak := w.sampleWhile(func() { w.play(length-length/4, "soak") })
	after := w.quiet(t)
	t.Logf("%s: %s", length, w.summary())
	t.Logf("at most while it ran:      %s", peak)
	t.Logf("at rest after the warm-up: %s", before)
	t.Logf("at rest at the end:        %s", after)

	if v := w.violations.Load(); v > 0 {
		t.Errorf("%d requests reached an address after its checker said it was unhealthy, while it still failed; first: %s", v, w.firstViolation())
	}
	if w.ok.Load() == 0 || w.idleStops.Load() == 0 || w.dnsChanges.Load() == 0 || w.flaps.Load() == 0 || w.fleetJoins.Load() == 0 {
		t.Errorf("the soak did not exercise everything: %s", w.summary())
	}
	if d := after.goroutines - before.goroutines; d > soakGoroutineSlack {
		t.Errorf("goroutines grew by %d (bound %d)", d, soakGoroutineSlack)
	}
	if d := after.fds - before.fds; d > soakFDSlack {
		t.Errorf("open descriptors grew by %d (bound %d)", d, soakFDSlack)
	}
	if d := int64(after.heap) - int64(before.heap); d > soakHeapSlack {
		t.Errorf("live heap grew by %d bytes (bound %d)", d, soakHeapSlack)
	}
	if after.bus != before.bus {
		t.Errorf("the bus holds %d topics at the end, %d after the warm-up", after.bus, before.bus)
	}
}

// soakWorld is the soak's DNS server, backends, Client and fleet.
type soakWorld struct {
	t      *testing.T
	dns    *dnstest.Server
	nats   *natstest.Server
	client *vigil.Client
	port   uint16
	ips    []netip.Addr

	mu        sync.Mutex
	failing   map[netip.Addr]bool
	sets      [soakNames][]netip.Addr
	unhealthy map[string]time.Time // name+" "+ip: when the name's checker was seen to hold it unhealthy
	first     string               // the first violation

	ok, status500, noHealthy, failed, violations atomic.Int64
	firstErr                                     string // the first request that failed otherwise
	idleStops, dnsChanges, flaps, fleetJoins     atomic.Int64
	window                                       atomic.Int64 // the first name of the window in use
}

func newSoakWorld(t *testing.T) *soakWorld {
	w := &soakWorld{t: t, failing: make(map[netip.Addr]bool), unhealthy: make(map[string]time.Time)}
	w.dns = dnsServer(t)
	w.startBackends(t)
	for i := range soakNames {
		w.sets[i] = w.pickSet()
		w.publish(i)
	}
	if err := w.dns.SetA("fleet.soak.test", 1, w.ips[0].String(), w.ips[1].String()); err != nil {
		t.Fatal(err)
	}
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	w.nats = ns

	probes := health.Active{
		Path: "/healthz", Timeout: 250 * time.Millisecond,
		Healthy:   health.HealthyRules{Interval: 100 * time.Millisecond},
		Unhealthy: health.UnhealthyRules{Interval: 100 * time.Millisecond},
	}
	log := slog.New(&countingHandler{w: w})
	c, err := vigil.NewClient(vigil.ClientConfig{
		Upstreams: []vigil.Config{{Name: "fleet.soak.test", Port: w.port}},
		Defaults: vigil.Config{
			Resolver: resolver.Config{Servers: []string{w.dns.Addr()}, MinTTL: 50 * time.Millisecond},
			Health:   health.Config{Active: probes},
		},
		Template:             &vigil.Config{},
		Hosts:                func(h string) bool { return strings.HasSuffix(h, ".soak.test") },
		MaxTemplateUpstreams: soakNames + 1,
		IdleTimeout:          soakIdle,
	}, vigil.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w.client = c
	for i := range soakNames {
		name := soakName(i)
		events.Subscribe(c.Bus(), health.StatusTopic(name), func(s health.StatusChange) { w.sawStatus(name, s) })
	}
	return w
}

func soakName(i int) string { return fmt.Sprintf("n%02d.soak.test", i) }

// startBackends starts soakBackends HTTP servers on one port of 127.0.93.X:
// /healthz and every request fail with 500 while the backend fails; a
// request's path carries when it was sent (Unix nanoseconds), checked
// against what the checkers said.
func (w *soakWorld) startBackends(t *testing.T) {
	for i := range soakBackends {
		ip := netip.AddrFrom4([4]byte{127, 0, 93, byte(i + 1)})
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, w.port).String())
		if err != nil {
			t.Fatal(err)
		}
		if w.port == 0 {
			w.port = uint16(ln.Addr().(*net.TCPAddr).Port)
		}
		w.ips = append(w.ips, ip)
		srv := &http.Server{Handler: w.handler(ip), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
}

func (w *soakWorld) handler(ip netip.Addr) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		failing := w.failing[ip]
		if sent, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/s/"), 10, 64); err == nil && failing {
			name, _, _ := strings.Cut(r.Host, ":")
			if since, ok := w.unhealthy[name+" "+ip.String()]; ok && sent >= since.UnixNano() {
				if w.violations.Add(1) == 1 {
					w.first = fmt.Sprintf("%s to %s, sent %s after the checker held it unhealthy",
						name, ip, time.Duration(sent-since.UnixNano()))
				}
			}
		}
		w.mu.Unlock()
		if failing {
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(rw, "ok")
	})
}

// sawStatus records what the checker of name said of an address.
func (w *soakWorld) sawStatus(name string, s health.StatusChange) {
	k := name + " " + s.Address.IP.String()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case s.To == health.Unhealthy:
		if _, ok := w.unhealthy[k]; !ok {
			w.unhealthy[k] = time.Now()
		}
	case s.To == health.Healthy:
		delete(w.unhealthy, k)
	}
}

func (w *soakWorld) firstViolation() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// pickSet returns soakPerName distinct backends at random.
func (w *soakWorld) pickSet() []netip.Addr {
	perm := rand.Perm(len(w.ips))[:soakPerName]
	set := make([]netip.Addr, len(perm))
	for i, p := range perm {
		set[i] = w.ips[p]
	}
	return set
}

// publish puts name i's set in DNS.
func (w *soakWorld) publish(i int) {
	ips := make([]string, len(w.sets[i]))
	for j, ip := range w.sets[i] {
		ips[j] = ip.String()
	}
	if err := w.dns.SetA(soakName(i), 1, ips...); err != nil {
		w.t.Error(err)
	}
}

// play runs traffic, DNS churn, flapping backends and a joining and
// leaving fleet member for d.
func (w *soakWorld) play(d time.Duration, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range soakWorkers {
		wg.Go(func() { w.traffic(ctx) })
	}
	wg.Go(func() { w.churn(ctx) })
	wg.Go(func() { w.member(ctx) })
	wg.Go(func() { w.shareClient(ctx) })
	wg.Wait()
	w.t.Logf("%s over: %s", what, w.summary())
}

// traffic sends requests to names of the sliding window until ctx ends.
func (w *soakWorld) traffic(ctx context.Context) {
	hc := w.client.Client
	for ctx.Err() == nil {
		i := (int(w.window.Load()) + rand.IntN(soakWindow)) % soakNames
		url := fmt.Sprintf("http://%s:%d/s/%d", soakName(i), w.port, time.Now().UnixNano())
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				w.ok.Add(1)
			} else {
				w.status500.Add(1) // a failing backend's answer, before its checker knew
			}
		} else if errors.Is(err, balancer.ErrNoHealthy) {
			w.noHealthy.Add(1) // every address of the name fails: said, not sent
		} else {
			w.failed.Add(1)
			w.mu.Lock()
			if w.firstErr == "" {
				w.firstErr = err.Error()
			}
			w.mu.Unlock()
		}
		cancel()
	}
}

// churn changes one name's answer, flaps one backend and slides the window,
// on a short tick, until ctx ends.
func (w *soakWorld) churn(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		i := rand.IntN(soakNames)
		w.mu.Lock()
		set := w.sets[i]
		set[rand.IntN(len(set))] = w.ips[rand.IntN(len(w.ips))]
		w.sets[i] = dedup(set)
		w.mu.Unlock()
		w.publish(i)
		w.dnsChanges.Add(1)
		if n%3 == 0 {
			w.flap()
		}
		if n%5 == 0 {
			w.window.Add(soakWindow / 4)
		}
	}
}

// flap turns a backend failing, or one that fails healthy again.
func (w *soakWorld) flap() {
	ip := w.ips[rand.IntN(len(w.ips))]
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range w.failing {
		if f {
			n++
		}
	}
	switch {
	case w.failing[ip]:
		// It recovers: what the checkers said of it no longer binds them.
		for k := range w.unhealthy {
			if strings.HasSuffix(k, " "+ip.String()) {
				delete(w.unhealthy, k)
			}
		}
		w.failing[ip] = false
	case n < soakMaxFailing:
		w.failing[ip] = true
	default:
		return
	}
	w.flaps.Add(1)
}

func dedup(set []netip.Addr) []netip.Addr {
	out := set[:0]
	seen := map[netip.Addr]bool{}
	for _, ip := range set {
		if !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	return out
}

// shareClient shares the verdicts of the Client's configured upstream on
// the fleet until ctx ends.
func (w *soakWorld) shareClient(ctx context.Context) {
	up, ok := w.client.Upstream(fmt.Sprintf("fleet.soak.test:%d", w.port))
	if !ok {
		w.t.Error("the Client has no upstream fleet.soak.test")
		return
	}
	f, err := fleet.New(fleet.Config{URL: w.nats.URL(), Member: "client", Bucket: "soak"})
	if err != nil {
		w.t.Error(err)
		return
	}
	if err := f.Attach(up); err != nil {
		w.t.Error(err)
		return
	}
	if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		w.t.Errorf("the Client's fleet member: %v", err)
	}
}

// member is another fleet member of fleet.soak.test that joins for a
// while and leaves, again and again, until ctx ends.
func (w *soakWorld) member(ctx context.Context) {
	for ctx.Err() == nil {
		up, err := vigil.New(vigil.Config{
			Name: "fleet.soak.test", Port: w.port,
			Resolver: resolver.Config{Servers: []string{w.dns.Addr()}, MinTTL: 50 * time.Millisecond},
			Health: health.Config{Active: health.Active{
				Path: "/healthz", Timeout: 250 * time.Millisecond,
				Healthy:   health.HealthyRules{Interval: 100 * time.Millisecond},
				Unhealthy: health.UnhealthyRules{Interval: 100 * time.Millisecond},
			}},
		})
		if err != nil {
			w.t.Error(err)
			return
		}
		f, err := fleet.New(fleet.Config{URL: w.nats.URL(), Member: "member", Bucket: "soak"})
		if err == nil {
			err = f.Attach(up)
		}
		if err != nil {
			w.t.Error(err)
			return
		}
		stay, cancel := context.WithTimeout(ctx, time.Duration(300+rand.IntN(700))*time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() { _ = up.Run(stay) })
		wg.Go(func() { _ = f.Run(stay) })
		w.fleetJoins.Add(1)
		wg.Wait()
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sampleWhile runs play and returns the most the process held while it
// ran, read every 250ms.
func (w *soakWorld) sampleWhile(play func()) rest {
	var peak rest
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak.goroutines = max(peak.goroutines, runtime.NumGoroutine())
		peak.fds = max(peak.fds, openFDs(w.t))
		peak.heap = max(peak.heap, ms.HeapAlloc)
		peak.bus = max(peak.bus, w.client.Bus().Len())
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	play()
	close(done)
	wg.Wait()
	return peak
}

// rest is what the process holds at a quiet moment.
type rest struct {
	goroutines, fds, bus int
	heap                 uint64
}

func (r rest) String() string {
	return fmt.Sprintf("%d goroutines, %d open descriptors, %.1f MB live heap, %d topics on the bus",
		r.goroutines, r.fds, float64(r.heap)/(1<<20), r.bus)
}

// quiet waits until every template upstream stopped, then reads what the
// process holds.
func (w *soakWorld) quiet(t *testing.T) rest {
	testutil.Eventually(t, 30*time.Second, "every template upstream stopped", func() bool {
		return len(w.client.Upstreams()) == 1
	})
	w.client.CloseIdleConnections()
	var r rest
	// Goroutines and descriptors settle a moment after the stops (a
	// connection's reader ends once it is closed): take the lowest reading
	// of a few.
	r.goroutines, r.fds = 1<<30, 1<<30
	for range 10 {
		runtime.GC()
		r.goroutines = min(r.goroutines, runtime.NumGoroutine())
		r.fds = min(r.fds, openFDs(t))
		time.Sleep(20 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heap = ms.HeapAlloc
	r.bus = w.client.Bus().Len()
	return r
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	return len(es)
}

func (w *soakWorld) summary() string {
	w.mu.Lock()
	first := w.firstErr
	w.mu.Unlock()
	return fmt.Sprintf("%d requests answered 200, %d answered 500, %d found no healthy address, %d failed otherwise (first: %q); %d idle stops, %d DNS changes, %d backend flaps, %d fleet joins",
		w.ok.Load(), w.status500.Load(), w.noHealthy.Load(), w.failed.Load(), first,
		w.idleStops.Load(), w.dnsChanges.Load(), w.flaps.Load(), w.fleetJoins.Load())
}

// countingHandler counts the Client's idle stops from its log.
type countingHandler struct{ w *soakWorld }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "vigil: idle upstream stopped" {
		h.w.idleStops.Add(1)
	}
	return nil
}
