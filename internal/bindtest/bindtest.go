// Package bindtest runs a BIND 9 name server for tests: an authoritative
// zone on a free loopback port that accepts RFC 2136 dynamic updates from
// 127.0.0.1, and, if asked, child zones delegated to a server that does not
// answer, for which named answers SERVFAIL.
//
// Start skips the test when named is not installed, or fails it when the
// environment variable VIGIL_REQUIRE_BIND is "1". A Server is safe for
// concurrent use.
package bindtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil/internal/testutil"
)

// RequireEnv names the environment variable that turns a missing named
// into a test failure instead of a skip.
const RequireEnv = "VIGIL_REQUIRE_BIND"

// startTimeout bounds how long named may take to answer its first query.
const startTimeout = 15 * time.Second

// Server is a named serving one zone. It runs from Start until the test
// ends, except between Stop and Restart.
type Server struct {
	Zone  string // the zone, fully qualified, e.g. "example.test."
	addr  string
	named string
	args  []string
	log   *testutil.Buffer

	mu   sync.Mutex // guards proc
	proc *process   // nil while stopped
}

// process is one run of named.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// stop interrupts named and waits for it to exit, killing it after 5s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Addr returns the "127.0.0.1:port" named listens on (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// FindNamed returns the path of the named binary: from PATH, else
// /usr/sbin/named.
func FindNamed() (string, error) { return testutil.FindDaemon("named", "bind9") }

// Config describes what a Server serves.
type Config struct {
	Zone    string   // the zone, e.g. "example.test"
	Records []string // zone-file lines such as "www 1 IN A 10.0.0.1", besides the SOA and NS records
	// Broken names child zones (relative to Zone, e.g. "broken") delegated
	// to a server that does not answer. named recurses for the names under
	// them (for queries that ask for recursion) through a forwarder on a
	// closed loopback port, and answers SERVFAIL; it never queries beyond
	// loopback.
	Broken []string
}

// Start runs named for zone (e.g. "example.test") with the given records
// (zone-file lines such as "www 1 IN A 10.0.0.1") in addition to its SOA and
// NS records, and stops it when the test ends.
func Start(t testing.TB, zone string, records ...string) *Server {
	t.Helper()
	return StartConfig(t, Config{Zone: zone, Records: records})
}

// StartConfig runs named as cfg says, and stops it when the test ends.
func StartConfig(t testing.TB, cfg Config) *Server {
	t.Helper()
	named := testutil.RequireDaemon(t, "named", "bind9", RequireEnv)
	cfg.Zone = dns.Fqdn(cfg.Zone)
	var lastErr error
	for range 3 { // the free port may be taken before named binds it
		s, err := start(t, named, cfg)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("bindtest: %v", lastErr)
	return nil
}

func start(t testing.TB, named string, cfg Config) (*Server, error) {
	zone := cfg.Zone
	dir := t.TempDir()
	port, err := testutil.FreePort()
	if err != nil {
		return nil, err
	}
	recursion := "recursion no;"
	if len(cfg.Broken) > 0 {
		closed, err := testutil.FreePort() // nothing listens there
		for err == nil && closed == port {
			closed, err = testutil.FreePort()
		}
		if err != nil {
			return nil, err
		}
		recursion = fmt.Sprintf("recursion yes;\n\tallow-recursion { 127.0.0.1; };\n\tforward only;\n\tforwarders { 127.0.0.1 port %d; };", closed)
	}
	zoneFile := filepath.Join(dir, "zone.db")
	var z strings.Builder
	fmt.Fprintf(&z, "$ORIGIN %s\n$TTL 1\n", zone)
	fmt.Fprintf(&z, "@ IN SOA ns.%s hostmaster.%s 1 60 60 600 1\n", zone, zone)
	fmt.Fprintf(&z, "@ IN NS ns.%s\nns IN A 127.0.0.1\n", zone)
	for _, b := range cfg.Broken {
		fmt.Fprintf(&z, "%[1]s IN NS ns.%[1]s\nns.%[1]s IN A 127.0.0.1\n", b)
	}
	for _, r := range cfg.Records {
		z.WriteString(r + "\n")
	}
	if err := os.WriteFile(zoneFile, []byte(z.String()), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "named.conf")
	confText := fmt.Sprintf(`options {
	directory %[1]q;
	pid-file %[2]q;
	session-keyfile %[3]q;
	listen-on port %[4]d { 127.0.0.1; };
	listen-on-v6 { none; };
	%[7]s
	notify no;
	dnssec-validation no;
	allow-query { any; };
};
controls { };
zone %[5]q {
	type primary;
	file %[6]q;
	allow-update { 127.0.0.1; };
};
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), port, zone, zoneFile, recursion)
	if err := os.WriteFile(conf, []byte(confText), 0o644); err != nil {
		return nil, err
	}
	args := []string{"-g", "-c", conf}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	s := &Server{
		Zone: zone, addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(port)),
		named: named, args: args, log: &testutil.Buffer{},
	}
	if err := s.launch(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("named output:\n%s", s.log.String())
		}
	})
	return s, nil
}

// launch starts named and waits until it answers. The caller holds no lock
// and named is not running.
func (s *Server) launch() error {
	cmd := exec.Command(s.named, s.args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start named: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := s.waitReady(p.exited); err != nil {
		p.stop()
		return fmt.Errorf("%w\nnamed output:\n%s", err, s.log.String())
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Stop stops named and waits for it to exit; queries to Addr then go
// unanswered until Restart. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Restart stops named if it runs, then starts it again on the same address
// with the same zone, including the dynamic updates made so far (named
// keeps them in its journal), and waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	var err error
	for range 3 { // the port may be held briefly by another process
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bindtest: restart: %v", err)
}

// waitReady polls until named answers the zone's SOA.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(s.Zone, dns.TypeSOA)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("named exited before answering")
		default:
		}
		if r, _, err := c.Exchange(m, s.addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("named did not answer SOA %s within %v", s.Zone, startTimeout)
}

// Add adds records (zone-file lines with fully qualified or zone-relative
// owners, e.g. "www.example.test. 1 IN A 10.0.0.2") with an RFC 2136 update.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	s.update(t, func(m *dns.Msg, rrs []dns.RR) { m.Insert(rrs) }, records)
}

// Remove deletes the given records (matched by owner, type and data) with
// an RFC 2136 update.
func (s *Server) Remove(t testing.TB, records ...string) {
	t.Helper()
	s.update(t, func(m *dns.Msg, rrs []dns.RR) { m.Remove(rrs) }, records)
}

// RemoveRRset deletes every record of name and type (e.g. dns.TypeA).
func (s *Server) RemoveRRset(t testing.TB, name string, rrtype uint16) {
	t.Helper()
	rr := &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassINET}}
	s.send(t, func(m *dns.Msg) { m.RemoveRRset([]dns.RR{rr}) })
}

// ReplaceRRset replaces every record of name and type with records (zone-file
// lines) in one atomic update, so no query sees the name without them.
func (s *Server) ReplaceRRset(t testing.TB, name string, rrtype uint16, records ...string) {
	t.Helper()
	old := &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassINET}}
	s.update(t, func(m *dns.Msg, rrs []dns.RR) {
		m.RemoveRRset([]dns.RR{old})
		m.Insert(rrs)
	}, records)
}

func (s *Server) update(t testing.TB, op func(*dns.Msg, []dns.RR), records []string) {
	t.Helper()
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR("$ORIGIN " + s.Zone + "\n" + r)
		if err != nil || rr == nil {
			t.Fatalf("bindtest: record %q: %v", r, err)
		}
		rrs = append(rrs, rr)
	}
	s.send(t, func(m *dns.Msg) { op(m, rrs) })
}

// send sends one dynamic update over TCP and checks that it succeeded.
func (s *Server) send(t testing.TB, fill func(*dns.Msg)) {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(s.Zone)
	fill(m)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, s.addr)
	if err != nil {
		t.Fatalf("bindtest: update: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("bindtest: update: %s", dns.RcodeToString[r.Rcode])
	}
}
