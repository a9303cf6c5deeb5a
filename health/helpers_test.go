package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// fast is a configuration probing every iv with small thresholds.
func fast(name string, iv time.Duration) Config {
	return Config{
		Name: name,
		Active: Active{
			Timeout:   500 * time.Millisecond,
			Healthy:   HealthyRules{Interval: iv, Successes: 2},
			Unhealthy: UnhealthyRules{Interval: iv, HTTPFailures: 2, TCPFailures: 2, Timeouts: 2},
		},
	}
}

// passiveOnly is a configuration without active probes.
func passiveOnly(name string) Config {
	return Config{Name: name, Active: Active{
		Healthy:   HealthyRules{Interval: -1},
		Unhealthy: UnhealthyRules{Interval: -1},
	}}
}

// newChecker builds a checker; hook, if not nil, runs (under the checker's
// lock) just before each probe's I/O.
func newChecker(t *testing.T, cfg Config, bus *events.Bus, hook func(*target), opts ...Option) *Checker {
	t.Helper()
	c, err := NewChecker(cfg, bus, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.onProbeStart = hook
	return c
}

// start runs c until the test ends and checks that Run returns nil.
func start(t *testing.T, c *Checker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// newBus returns a bus closed when the test ends (after checkers stop,
// since cleanups run last-in first-out).
func newBus(t *testing.T) *events.Bus {
	b := events.New()
	t.Cleanup(b.Close)
	return b
}

// backends starts n HTTP backends from first (127.0.0.0/8).
func backends(t *testing.T, first string, n int, ca *backendtest.CA) []*backendtest.Backend {
	t.Helper()
	bs, err := backendtest.StartGroup(netip.MustParseAddr(first), n, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	return bs
}

// eventLog records the StatusChanges of one upstream.
type eventLog struct {
	mu  sync.Mutex
	evs []StatusChange
}

func recordEvents(t *testing.T, bus *events.Bus, name string) *eventLog {
	l := &eventLog{}
	unsub := events.Subscribe(bus, StatusTopic(name), func(e StatusChange) {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
	})
	t.Cleanup(unsub)
	return l
}

func (l *eventLog) all() []StatusChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// to returns the events for a that went to s.
func (l *eventLog) to(a resolver.Address, s Status) []StatusChange {
	var out []StatusChange
	for _, e := range l.all() {
		if e.Address.Key() == a.Key() && e.To == s {
			out = append(out, e)
		}
	}
	return out
}

// addrsOf returns the addresses of ts.
func addrsOf(ts []Target) []resolver.Address {
	out := make([]resolver.Address, len(ts))
	for i, t := range ts {
		out[i] = t.Address
	}
	return out
}

// sorted returns a sorted copy of as.
func sorted(as []resolver.Address) []resolver.Address {
	out := slices.Clone(as)
	resolver.Sort(out)
	return out
}

// publish sends a Change for name and waits until the checker has seen it
// (applied or ignored).
func publish(t *testing.T, bus *events.Bus, c *Checker, v uint64, addrs ...resolver.Address) {
	t.Helper()
	before := c.Stats()
	events.Publish(bus, resolver.Topic(c.name), resolver.Change{Name: c.name, Version: v, Addresses: sorted(addrs)})
	testutil.Eventually(t, 2*time.Second, "the change to be seen", func() bool {
		s := c.Stats()
		return s.ChangesApplied+s.ChangesIgnored > before.ChangesApplied+before.ChangesIgnored
	})
}

// probeLog records probe starts per target key.
type probeLog struct {
	mu     sync.Mutex
	starts map[resolver.Key][]time.Time
}

func newProbeLog() *probeLog { return &probeLog{starts: make(map[resolver.Key][]time.Time)} }

func (p *probeLog) hook(t *target) {
	p.mu.Lock()
	p.starts[t.addr.Key()] = append(p.starts[t.addr.Key()], t.state.lastProbe)
	p.mu.Unlock()
}

func (p *probeLog) of(a resolver.Address) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.starts[a.Key()])
}

func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// run performs the probe described by sp against addr and returns its outcome.
func (c *Checker) run(ctx context.Context, sp spec, addr resolver.Address) outcome {
	res := c.runProbe(ctx, sp, addr, nil)
	closeConn(res.conn)
	return res.o
}

// newCA returns a test CA when on, else nil.
func newCA(t *testing.T, on bool) *backendtest.CA {
	t.Helper()
	if !on {
		return nil
	}
	ca, err := backendtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// scripted is a Prober whose outcome is set per target; it counts calls and
// the probes inside Probe at once, per target and in all.
type scripted struct {
	delay time.Duration

	mu       sync.Mutex
	out      map[resolver.Key]ProbeOutcome // absent: success
	calls    map[resolver.Key]int
	inside   map[resolver.Key]int
	total    int
	peak     int
	peakAddr int // the most probes of one target inside Probe at once
}

func newScripted() *scripted {
	return &scripted{out: map[resolver.Key]ProbeOutcome{}, calls: map[resolver.Key]int{}, inside: map[resolver.Key]int{}}
}

func (s *scripted) set(a resolver.Address, o ProbeOutcome) {
	s.mu.Lock()
	s.out[a.Key()] = o
	s.mu.Unlock()
}

func (s *scripted) callsOf(a resolver.Address) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[a.Key()]
}

func (s *scripted) Probe(ctx context.Context, a resolver.Address) (ProbeOutcome, string) {
	k := a.Key()
	s.mu.Lock()
	s.calls[k]++
	s.inside[k]++
	s.total++
	s.peak = max(s.peak, s.total)
	s.peakAddr = max(s.peakAddr, s.inside[k])
	o, ok := s.out[k]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inside[k]--
		s.total--
		s.mu.Unlock()
	}()
	if !ok {
		o = ProbeSuccess
	}
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ProbeTimeout, "canceled"
		}
	}
	return o, "scripted " + o.String()
}

// loopback returns n addresses 127.77.<block>.1.. on port 80 for hostname.
func loopback(block, n int, hostname string) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range n {
		out[i] = resolver.Address{IP: mustIP(fmt.Sprintf("127.77.%d.%d", block, i+1)), Port: 80, Hostname: hostname}
	}
	return out
}

// internals is what a target's scheduling looks like from inside.
type internals struct {
	ptr     *target
	next    time.Time
	queued  bool
	ejected bool // in the ejection queue
}

func inside(c *Checker, a resolver.Address) internals {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.targets[a.Key()]
	if t == nil {
		return internals{}
	}
	return internals{ptr: t, next: t.next, queued: t.index >= 0, ejected: t.ejIndex >= 0}
}

// mustTarget returns a's snapshot, failing the test when a is no target.
func mustTarget(t *testing.T, c *Checker, a resolver.Address) Target {
	t.Helper()
	tg, ok := c.Target(a)
	if !ok {
		t.Fatalf("%v is not a target", a)
	}
	return tg
}

// ejectedInside counts, under the checker's lock, the live targets whose
// passive verdict is an ejection and checks the ejection queue against
// them: every queued target is live and ejected, and every ejected live
// target is queued.
func ejectedInside(c *Checker) (ejected int, problem string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range c.ejections.ts {
		switch {
		case c.targets[t.addr.Key()] != t:
			return 0, "the ejection queue holds " + t.addr.String() + ", which is not a live target"
		case t.ejIndex != i:
			return 0, "ejIndex out of step for " + t.addr.String()
		case !t.state.passive.ejected():
			return 0, "the ejection queue holds " + t.addr.String() + ", which is not ejected"
		}
	}
	for _, t := range c.targets {
		if t.state.passive.ejected() {
			ejected++
			if t.ejIndex < 0 {
				return 0, t.addr.String() + " is ejected but not in the ejection queue"
			}
		}
	}
	if ejected != c.ejections.Len() {
		return 0, fmt.Sprintf("%d ejected targets, %d in the queue", ejected, c.ejections.Len())
	}
	return ejected, ""
}

// rawServer accepts TCP connections on a loopback address and hands each to
// a script that writes whatever bytes it likes; it counts the connections
// it accepted and those still open.
type rawServer struct {
	ln       net.Listener
	addr     resolver.Address
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	open  map[net.Conn]struct{}
	done  bool
	peaks int // the most connections open at once
}

func startRaw(t *testing.T, ip string, script func(c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, open: make(map[net.Conn]struct{})}
	s.addr = resolver.Address{IP: mustIP(ip), Port: uint16(ln.Addr().(*net.TCPAddr).Port), Hostname: "raw.test"}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				_ = c.Close()
				return
			}
			s.open[c] = struct{}{}
			s.peaks = max(s.peaks, len(s.open))
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					_ = c.Close()
					s.mu.Lock()
					delete(s.open, c)
					s.mu.Unlock()
				}()
				script(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		s.done = true
		for c := range s.open {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// openConns returns how many accepted connections the script still holds.
func (s *rawServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// readRequest reads one request's head from c; false when none came.
func readRequest(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := http.ReadRequest(bufio.NewReader(c))
	_ = c.SetReadDeadline(time.Time{})
	return err == nil
}

// waitClosed reads from c until the peer closes it (or 5s pass).
func waitClosed(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

// probeSpec returns c's probe settings.
func probeSpec(c *Checker) spec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spec()
}

// probeAndClose runs one probe of a and closes the connection it kept.
func probeAndClose(c *Checker, a resolver.Address) probed {
	res := c.runProbe(context.Background(), probeSpec(c), a, nil)
	closeConn(res.conn)
	return res
}

// startStoppable runs c until stop is called (or the test ends).
func startStoppable(t *testing.T, c *Checker) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- c.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// probeOnce runs one probe of a with cfg and returns its outcome.
func probeOnce(t *testing.T, cfg Config, a resolver.Address, opts ...Option) probed {
	t.Helper()
	c := newChecker(t, cfg, nil, nil, opts...)
	c.mu.Lock()
	sp := c.spec()
	c.mu.Unlock()
	res := c.runProbe(context.Background(), sp, a, nil)
	closeConn(res.conn)
	return res
}

var outcomeNames = map[outcome]string{ignored: "ignored", success: "success", httpFailure: "HTTP failure",
	tcpFailure: "TCP failure", timeout: "timeout"}

// countingDialer dials TCP and counts the bytes read from its connections.
type countingDialer struct {
	d    net.Dialer
	read atomic.Int64
}

func (cd *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := cd.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, read: &cd.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// countReads makes the HTTP(S) probes of c count the bytes they read.
func countReads(c *Checker) *countingDialer {
	cd := &countingDialer{}
	c.http.dialer = cd.DialContext
	return cd
}
