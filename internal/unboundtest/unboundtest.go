// Package unboundtest runs Unbound as a caching resolver for tests: on a
// free loopback port, with stub zones that point at authoritative servers
// on loopback (such as internal/bindtest's), serve-expired on, from its own
// configuration file: no trust anchor, no root key, no control socket, and
// no query beyond loopback (every name outside the stub zones is refused).
//
// Start skips the test when unbound is not installed, or fails it when the
// environment variable VIGIL_REQUIRE_UNBOUND is "1". A Server is safe for
// concurrent use.
package unboundtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil/internal/testutil"
)

// RequireEnv names the environment variable that turns a missing unbound
// into a test failure instead of a skip.
const RequireEnv = "VIGIL_REQUIRE_UNBOUND"

// startTimeout bounds how long unbound may take to answer its first query.
const startTimeout = 15 * time.Second

// Config describes a caching resolver. Zero values mean the documented
// defaults.
type Config struct {
	// Stubs maps each zone (e.g. "vigil.test") to the "ip:port" of its
	// authoritative server. Names outside them are refused.
	Stubs map[string]string
	// ServeExpiredClientTimeout is how long unbound tries the authoritative
	// server before it answers with an expired record; default 1.8s, RFC
	// 8767's advice. Negative: it answers with the expired record at once
	// and refreshes it in the background (unbound's own default).
	ServeExpiredClientTimeout time.Duration
	// ServeExpiredReplyTTL is the TTL of expired records served; default 1
	// (unbound's own default is 30).
	ServeExpiredReplyTTL uint32
	// CacheMinTTL is the least TTL unbound keeps records for; default 0.
	CacheMinTTL uint32
}

// Server is an unbound process. It runs from Start until the test ends.
type Server struct {
	addr string
	log  *testutil.Buffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr returns the "127.0.0.1:port" unbound listens on (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// FindUnbound returns the path of the unbound binary: from PATH, else
// /usr/sbin/unbound.
func FindUnbound() (string, error) { return testutil.FindDaemon("unbound", "unbound") }

// Start runs unbound as cfg says and stops it when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := testutil.RequireDaemon(t, "unbound", "unbound", RequireEnv)
	if len(cfg.Stubs) == 0 {
		t.Fatal("unboundtest: no stub zone")
	}
	var lastErr error
	for range 3 { // the free port may be taken before unbound binds it
		s, err := start(t, bin, cfg)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("unboundtest: %v", lastErr)
	return nil
}

// conf returns the configuration file's text for cfg, in dir, on port.
func conf(cfg Config, dir string, port int) (string, error) {
	clientTimeout := cfg.ServeExpiredClientTimeout
	switch {
	case clientTimeout == 0:
		clientTimeout = 1800 * time.Millisecond
	case clientTimeout < 0:
		clientTimeout = 0
	}
	replyTTL := cfg.ServeExpiredReplyTTL
	if replyTTL == 0 {
		replyTTL = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-not-query-localhost: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	module-config: "iterator"
	num-threads: 1
	so-reuseport: no
	access-control: 127.0.0.0/8 allow
	qname-minimisation: no
	prefetch: no
	cache-min-ttl: %d
	serve-expired: yes
	serve-expired-ttl: 0
	serve-expired-reply-ttl: %d
	serve-expired-client-timeout: %d
	infra-keep-probing: yes
	infra-host-ttl: 60
	local-zone: "." refuse
`, port, dir, filepath.Join(dir, "unbound.pid"), cfg.CacheMinTTL, replyTTL, clientTimeout.Milliseconds())
	zones := make([]string, 0, len(cfg.Stubs))
	for z := range cfg.Stubs {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones { // stub zones are resolved, not refused
		fmt.Fprintf(&b, "\tlocal-zone: %q transparent\n", dns.Fqdn(z))
	}
	b.WriteString("remote-control:\n\tcontrol-enable: no\n")
	for _, z := range zones {
		host, p, err := net.SplitHostPort(cfg.Stubs[z])
		if err != nil {
			return "", fmt.Errorf("stub %s: %w", z, err)
		}
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s@%s\n", dns.Fqdn(z), host, p)
	}
	return b.String(), nil
}

func start(t testing.TB, bin string, cfg Config) (*Server, error) {
	dir := t.TempDir()
	port, err := testutil.FreePort()
	if err != nil {
		return nil, err
	}
	text, err := conf(cfg, dir, port)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return nil, err
	}
	s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &testutil.Buffer{}}
	cmd := exec.Command(bin, "-d", "-c", file)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start unbound: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nconfiguration:\n%s\nunbound output:\n%s", err, text, s.log.String())
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("unbound output:\n%s", s.log.String())
		}
	})
	return s, nil
}

// stop interrupts unbound and waits for it to exit, killing it after 5s.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// waitReady polls until unbound answers for localhost, which it serves
// itself.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("localhost.", dns.TypeA)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("unbound exited before answering")
		default:
		}
		if r, _, err := c.Exchange(m, s.addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("unbound did not answer within %v", startTimeout)
}
