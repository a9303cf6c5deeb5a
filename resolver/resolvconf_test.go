package resolver

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

func TestCandidates(t *testing.T) {
	ab := []string{"a.test.", "b.test."}
	long := strings.Repeat("x", 60) + "." + strings.Repeat("y", 60) + "." + strings.Repeat("z", 60) + "."
	tests := []struct {
		name   string
		search []string
		ndots  int
		want   []string
	}{
		{"web", ab, 1, []string{"web.a.test.", "web.b.test.", "web."}},
		{"WEB", ab, 1, []string{"web.a.test.", "web.b.test.", "web."}},
		{"web.svc", ab, 1, []string{"web.svc.", "web.svc.a.test.", "web.svc.b.test."}},
		{"web.svc", ab, 2, []string{"web.svc.a.test.", "web.svc.b.test.", "web.svc."}},
		{"web.svc", ab, 0, []string{"web.svc.", "web.svc.a.test.", "web.svc.b.test."}},
		{"web.", ab, 5, []string{"web."}},
		{"web", nil, 1, []string{"web."}},
		{"web", []string{"a.test.", "a.test."}, 1, []string{"web.a.test.", "web."}},
		{strings.Repeat("w", 63) + "." + strings.Repeat("v", 10), []string{long}, 5, []string{strings.Repeat("w", 63) + "." + strings.Repeat("v", 10) + "."}},
	}
	for _, tt := range tests {
		if got := candidates(tt.name, tt.search, tt.ndots); !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%q, %v, %d) = %v, want %v", tt.name, tt.search, tt.ndots, got, tt.want)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name, file, host string
		want             resolvConf
	}{
		{
			name: "servers, at most three",
			file: "nameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
			want: resolvConf{servers: []string{"10.0.0.1:53", "[fe80::1%eth0]:53", "10.0.0.3:53"}, ndots: 1},
		},
		{
			name: "the last of search and domain wins",
			file: "search A.test b.test.\ndomain c.test\n",
			want: resolvConf{search: []string{"c.test."}, ndots: 1},
		},
		{
			name: "search after domain",
			file: "domain c.test\nsearch A.test b.test. a.test .\n",
			want: resolvConf{search: []string{"a.test.", "b.test."}, ndots: 1},
		},
		{
			name: "the host name's domain without search",
			file: "nameserver 10.0.0.1\n", host: "box.example.org",
			want: resolvConf{servers: []string{"10.0.0.1:53"}, search: []string{"example.org."}, ndots: 1},
		},
		{
			name: "a host name without a domain",
			file: "", host: "box",
			want: resolvConf{ndots: 1},
		},
		{
			name: "options",
			file: "options ndots:5 timeout:3 attempts:2 rotate edns0 single-request\n",
			want: resolvConf{ndots: 5, timeout: 3 * time.Second, attempts: 2, rotate: true},
		},
		{
			name: "options clamped",
			file: "options ndots:99 timeout:0 attempts:9\noptions timeout:99 ndots:-1 attempts:x\n",
			want: resolvConf{ndots: 0, timeout: 30 * time.Second, attempts: 5},
		},
		{
			name: "comments and junk",
			file: "# nameserver 10.0.0.9\n; search x.test\nnameserver\nsortlist 10.0.0.0/8\n  nameserver 10.0.0.1  \n",
			want: resolvConf{servers: []string{"10.0.0.1:53"}, ndots: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseResolvConf(strings.NewReader(tt.file), "53", tt.host); !got.equal(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// resolvConfFor writes a resolv.conf naming srv (whose port the Source is
// told with withNameserverPort) and the lines given, and returns its path
// and the options that make a Source read it.
func resolvConfFor(t *testing.T, srv *dnstest.Server, lines ...string) (string, []Option) {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Addr())
	must(t, err)
	path := filepath.Join(t.TempDir(), "resolv.conf")
	writeFile(t, path, append([]string{"nameserver " + host}, lines...)...)
	return path, []Option{WithResolvConf(path), withNameserverPort(port)}
}

// writeFile replaces the file at path with lines, by a rename, as
// Kubernetes and resolvconf do.
func writeFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".new"
	must(t, os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	must(t, os.Rename(tmp, path))
}

// TestSearchList: a relative name with fewer dots than ndots tries the
// search domains first; the first candidate that has records is followed,
// its name in the addresses, until it stops existing.
func TestSearchList(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.b.test", 0, "10.0.0.2"))
	must(t, srv.SetA("web", 0, "10.9.9.9")) // the absolute name, tried last
	_, opts := resolvConfFor(t, srv, "search a.test b.test", "options ndots:2")
	bus := newBus(t)
	changes := record(t, bus, Topic("web"))
	s := mustSource(t, Config{Name: "web", Port: 80, MinTTL: 20 * time.Millisecond}, bus, opts...)
	start(t, s)
	got := waitChanges(t, changes, 1, patience)[0]
	if want := addrs("web.b.test", 80, "10.0.0.2"); got.Name != "web" || !slices.Equal(got.Addresses, want) {
		t.Fatalf("change = %+v, want Name web and %v", got, want)
	}

	// Followed: web.a.test is not asked again, even once it exists.
	must(t, srv.SetA("web.a.test", 0, "10.0.0.1"))
	q := srv.QueriesFor("web.b.test", dns.TypeA)
	testutil.Eventually(t, patience, "refreshes", func() bool { return srv.QueriesFor("web.b.test", dns.TypeA) >= q+3 })
	if n, m := srv.QueriesFor("web.a.test", dns.TypeA), srv.QueriesFor("web", dns.TypeA); n != 1 || m != 0 {
		t.Fatalf("%d queries for web.a.test, %d for web., want 1 and 0", n, m)
	}
	if len(changes.all()) != 1 {
		t.Fatalf("changes %+v while following web.b.test", changes.all())
	}

	// It stops existing: the candidates are walked again.
	srv.Remove("web.b.test")
	c := waitChanges(t, changes, 2, patience)[1]
	if want := addrs("web.a.test", 80, "10.0.0.1"); !slices.Equal(c.Addresses, want) || c.Name != "web" {
		t.Fatalf("change = %+v, want %v", c, want)
	}
}

func TestSearchListOrder(t *testing.T) {
	tests := []struct {
		name, conf string
		want       string // the hostname of the set
		notAsked   string
	}{
		{"absolute first at ndots", "search a.test\noptions ndots:1", "web.svc", "web.svc.a.test"},
		{"search first below ndots", "search a.test\noptions ndots:2", "web.svc.a.test", "web.svc"},
		{"trailing dot: absolute only", "search a.test\noptions ndots:5", "web.svc", "web.svc.a.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("web.svc", 0, "10.0.0.1"))
			must(t, srv.SetA("web.svc.a.test", 0, "10.0.0.2"))
			_, opts := resolvConfFor(t, srv, tt.conf)
			name := "web.svc"
			if strings.HasPrefix(tt.name, "trailing") {
				name = "web.svc."
			}
			s := mustSource(t, Config{Name: name, Port: 80}, nil, opts...)
			start(t, s)
			testutil.Eventually(t, patience, "the set", func() bool { return len(s.Addresses()) == 1 })
			if got := s.Addresses()[0].Hostname; got != tt.want {
				t.Fatalf("hostname %q, want %q", got, tt.want)
			}
			if n := srv.QueriesFor(tt.notAsked, dns.TypeA); n != 0 {
				t.Fatalf("%d queries for %s, want none", n, tt.notAsked)
			}
		})
	}
}

// TestSearchListFailureStopsTheWalk: a candidate that fails (SERVFAIL) is
// not passed over for a later one: the resolution fails and the last set
// is kept.
func TestSearchListFailureStopsTheWalk(t *testing.T) {
	srv := startDNS(t)
	srv.SetRcode("web.a.test", dns.RcodeServerFailure)
	must(t, srv.SetA("web.b.test", 0, "10.0.0.2"))
	_, opts := resolvConfFor(t, srv, "search a.test b.test")
	bus := newBus(t)
	failures := record(t, bus, FailureTopic("web"))
	s := mustSource(t, Config{Name: "web", Port: 80}, bus, opts...)
	start(t, s)
	f := waitFailure(t, failures, ErrServerFailure, patience)
	if len(s.Addresses()) != 0 || srv.QueriesFor("web.b.test", dns.TypeA) != 0 {
		t.Fatalf("addresses %v, %d queries for web.b.test after %v; want the walk stopped", s.Addresses(),
			srv.QueriesFor("web.b.test", dns.TypeA), f.Err)
	}
}

// TestSearchListAllNegative: when no candidate exists, the outcome is
// negative (held, then the empty set), and names every candidate.
func TestSearchListAllNegative(t *testing.T) {
	srv := startDNS(t)
	must(t, srv.SetA("web.a.test", 0, "10.0.0.1"))
	_, opts := resolvConfFor(t, srv, "search a.test b.test")
	bus := newBus(t)
	changes := record(t, bus, Topic("web"))
	failures := record(t, bus, FailureTopic("web"))
	s := mustSource(t, Config{Name: "web", Port: 80, MinTTL: 20 * time.Millisecond, NXDomainHold: 100 * time.Millisecond}, bus, opts...)
	start(t, s)
	waitChanges(t, changes, 1, patience)
	srv.Remove("web.a.test")
	f := waitFailure(t, failures, ErrNXDomain, patience)
	for _, c := range []string{"web.a.test.", "web.b.test.", "web."} {
		if !strings.Contains(f.Err.Error(), c) {
			t.Errorf("failure %q does not name %s", f.Err, c)
		}
	}
	if c := waitChanges(t, changes, 2, patience)[1]; len(c.Addresses) != 0 {
		t.Fatalf("change = %+v, want the empty set after the hold", c)
	}
}

// TestResolvConfReread: a changed file is read again: new servers, new
// search list.
func TestResolvConfReread(t *testing.T) {
	one := startDNS(t)
	_, port, err := net.SplitHostPort(one.Addr())
	must(t, err)
	two, err := dnstest.Start("127.0.0.2:" + port)
	if err != nil {
		t.Skipf("no second server on 127.0.0.2:%s: %v", port, err)
	}
	t.Cleanup(func() { _ = two.Close() })
	must(t, one.SetA("web.a.test", 0, "10.0.0.1"))
	must(t, two.SetA("web.a.test", 0, "10.0.0.2"))
	must(t, two.SetA("web.b.test", 0, "10.0.0.3"))
	path, opts := resolvConfFor(t, one, "search a.test")
	bus := newBus(t)
	changes := record(t, bus, Topic("web"))
	s := mustSource(t, Config{Name: "web", Port: 80, MinTTL: 20 * time.Millisecond}, bus, opts...)
	start(t, s)
	waitChanges(t, changes, 1, patience)

	writeFile(t, path, "nameserver 127.0.0.2", "search a.test")
	c := waitChanges(t, changes, 2, patience)[1]
	if want := addrs("web.a.test", 80, "10.0.0.2"); !slices.Equal(c.Addresses, want) {
		t.Fatalf("after the server changed: %+v, want %v", c, want)
	}
	// Rewritten in place, longer: the search list changes, and the walk
	// starts again.
	must(t, os.WriteFile(path, []byte("nameserver 127.0.0.2\nsearch b.test a.test\n"), 0o644))
	c = waitChanges(t, changes, 3, patience)[2]
	if want := addrs("web.b.test", 80, "10.0.0.3"); !slices.Equal(c.Addresses, want) {
		t.Fatalf("after the search list changed: %+v, want %v", c, want)
	}
	// The file vanishes: what it said last stays.
	must(t, os.Remove(path))
	q := two.Queries()
	testutil.Eventually(t, patience, "refreshes", func() bool { return two.Queries() >= q+3 })
	if len(changes.all()) != 3 {
		t.Fatalf("changes %+v after the file vanished", changes.all()[3:])
	}
}

func TestResolvConfOptions(t *testing.T) {
	t.Run("attempts", func(t *testing.T) {
		srv := startDNS(t)
		srv.SetMisbehavior(dnstest.Drop)
		_, opts := resolvConfFor(t, srv, "options attempts:3")
		bus := newBus(t)
		failures := record(t, bus, FailureTopic("web.test"))
		s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, Timeout: 50 * time.Millisecond}, bus,
			append(opts, withBackoff(time.Hour, time.Hour))...)
		start(t, s)
		f := waitFailure(t, failures, ErrTimeout, patience)
		// The Failure joins the error of every attempt: counted by the
		// Source itself, not by a server that may not have read the last
		// datagram yet.
		joined, ok := f.Err.(interface{ Unwrap() []error })
		if !ok || len(joined.Unwrap()) != 3 {
			t.Fatalf("failure %q, want the errors of 3 rounds over the one server", f.Err)
		}
		testutil.Eventually(t, patience, "3 queries at the server", func() bool { return srv.Queries() >= 3 })
		if n := srv.Queries(); n != 3 {
			t.Fatalf("%d queries, want 3", n)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := startDNS(t)
		srv.SetMisbehavior(dnstest.Drop)
		_, opts := resolvConfFor(t, srv, "options timeout:1")
		bus := newBus(t)
		queries := record(t, bus, QueryTopic("web.test"))
		failures := record(t, bus, FailureTopic("web.test"))
		s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only}, bus, opts...)
		start(t, s)
		f := waitFailure(t, failures, ErrTimeout, patience)
		q := waitValue(t, queries, patience, "the query", func(Query) bool { return true })
		// The error names the timeout waited; the query cannot have taken
		// less (load can only make it take longer).
		if q.Duration < time.Second || !strings.Contains(f.Err.Error(), "timeout after 1s") {
			t.Fatalf("query took %v, failure %q; want the file's 1s timeout", q.Duration, f.Err)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		one := startDNS(t)
		_, port, err := net.SplitHostPort(one.Addr())
		must(t, err)
		two, err := dnstest.Start("127.0.0.2:" + port)
		if err != nil {
			t.Skipf("no second server on 127.0.0.2:%s: %v", port, err)
		}
		t.Cleanup(func() { _ = two.Close() })
		for _, srv := range []*dnstest.Server{one, two} {
			must(t, srv.SetA("web.test", 0, "10.0.0.1"))
		}
		_, opts := resolvConfFor(t, one, "nameserver 127.0.0.2", "options rotate")
		s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, MinTTL: 10 * time.Millisecond}, nil, opts...)
		start(t, s)
		testutil.Eventually(t, patience, "10 queries", func() bool { return one.Queries()+two.Queries() >= 10 })
		if a, b := one.Queries(), two.Queries(); a < 4 || b < 4 {
			t.Fatalf("queries %d and %d, want them taking turns", a, b)
		}
	})
}

// TestTimeoutErrorText: a timeout says how long was waited, and for which
// server, not how the socket was closed.
func TestTimeoutErrorText(t *testing.T) {
	srv := startDNS(t)
	srv.SetMisbehavior(dnstest.Drop)
	bus := newBus(t)
	failures := record(t, bus, FailureTopic("web.test"))
	s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}, Timeout: 50 * time.Millisecond}, bus)
	start(t, s)
	f := waitFailure(t, failures, ErrTimeout, patience)
	want := "resolver: web.test. A: timeout after 50ms (server " + srv.Addr() + ")"
	if f.Err.Error() != want {
		t.Fatalf("error %q, want %q", f.Err, want)
	}
	var qe *QueryError
	if !errors.As(f.Err, &qe) || qe.Server != srv.Addr() {
		t.Fatalf("error %v is not a *QueryError for %s", f.Err, srv.Addr())
	}
}

// TestSearchWithServers: Config.Search and Config.Ndots make a relative name
// resolve against explicit servers, on any port (here a dnstest server on a
// random one), as resolv.conf's search and ndots do; set, they replace
// resolv.conf's.
func TestSearchWithServers(t *testing.T) {
	ab := []string{"a.test", "B.test."}
	tests := []struct {
		name     string
		cfg      Config
		conf     []string // resolv.conf lines; nil: Servers
		want     string   // the hostname of the set
		notAsked string
	}{
		{name: "search list", cfg: Config{Name: "web", Search: ab}, want: "web.b.test", notAsked: "web"},
		{name: "absolute first at the default ndots", cfg: Config{Name: "web.svc", Search: ab}, want: "web.svc", notAsked: "web.svc.a.test"},
		{name: "search first below ndots", cfg: Config{Name: "web.svc", Search: ab, Ndots: 2}, want: "web.svc.a.test", notAsked: "web.svc"},
		{name: "negative ndots: absolute first", cfg: Config{Name: "web", Search: ab, Ndots: -1}, want: "web", notAsked: "web.a.test"},
		{name: "trailing dot: absolute only", cfg: Config{Name: "web.svc.", Search: ab, Ndots: 5}, want: "web.svc", notAsked: "web.svc.a.test"},
		{name: "no search list: absolute only", cfg: Config{Name: "web"}, want: "web", notAsked: "web.b.test"},
		{name: "Search replaces resolv.conf's", cfg: Config{Name: "web.svc", Search: []string{"b.test"}},
			conf: []string{"search a.test", "options ndots:2"}, want: "web.svc.b.test", notAsked: "web.svc.a.test"},
		{name: "Ndots replaces resolv.conf's", cfg: Config{Name: "web.svc", Ndots: 1},
			conf: []string{"search a.test", "options ndots:2"}, want: "web.svc", notAsked: "web.svc.a.test"},
		{name: "resolv.conf's search with Ndots", cfg: Config{Name: "web.svc", Ndots: 3},
			conf: []string{"search b.test"}, want: "web.svc.b.test", notAsked: "web.svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A server of its own: one shared with the case before could
			// count a query of its Source late, under load.
			srv := startDNS(t)
			for name, ip := range map[string]string{
				"web": "10.0.0.1", "web.b.test": "10.0.0.2", "web.svc": "10.0.0.3", "web.svc.a.test": "10.0.0.4", "web.svc.b.test": "10.0.0.5",
			} {
				must(t, srv.SetA(name, 0, ip)) // TTL 0: refreshed every MinTTL
			}
			cfg := tt.cfg
			cfg.Port, cfg.Family, cfg.MinTTL = 80, IPv4Only, 20*time.Millisecond
			var opts []Option
			if tt.conf == nil {
				cfg.Servers = []string{srv.Addr()}
			} else {
				_, opts = resolvConfFor(t, srv, tt.conf...)
			}
			s := mustSource(t, cfg, nil, opts...)
			start(t, s)
			testutil.Eventually(t, patience, "the set", func() bool { return len(s.Addresses()) == 1 })
			if got := s.Addresses()[0].Hostname; got != tt.want {
				t.Fatalf("hostname %q, want %q", got, tt.want)
			}
			if st := s.State(); len(st.Candidates) > 1 && st.Following != tt.want {
				t.Fatalf("following %q of %v, want %q", st.Following, st.Candidates, tt.want)
			}
			// Followed: refreshes ask it alone.
			q := srv.QueriesFor(tt.want, dns.TypeA)
			testutil.Eventually(t, patience, "refreshes", func() bool { return srv.QueriesFor(tt.want, dns.TypeA) >= q+2 })
			if n := srv.QueriesFor(tt.notAsked, dns.TypeA); n != 0 {
				t.Fatalf("%d queries for %s, want none", n, tt.notAsked)
			}
		})
	}
}
