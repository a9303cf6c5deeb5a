package resolver

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultResolvConf is the resolver configuration file read when
// Config.Servers is empty, unless WithResolvConf names another.
const DefaultResolvConf = "/etc/resolv.conf"

// fallbackServer is used when the resolver configuration file is missing
// or names no server, as the system resolver does.
const fallbackServer = "127.0.0.1:53"

// Bounds of resolv.conf's values, those of glibc.
const (
	maxNameservers = 3  // MAXNS
	maxNdots       = 15 // RES_MAXNDOTS
	maxTimeout     = 30 // RES_MAXRETRANS, seconds
	maxAttempts    = 5  // RES_MAXRETRY
)

// resolvConf is what a resolv.conf file says, read the way the system
// resolver (glibc) reads it.
type resolvConf struct {
	servers  []string      // "ip:port" of the nameserver lines, at most 3; empty: none named
	search   []string      // fully qualified, lower case; from the last search or domain line, else the host name's domain
	ndots    int           // "options ndots:n", at most 15; default 1
	timeout  time.Duration // "options timeout:n" (seconds, 1..30); 0 when not given
	attempts int           // "options attempts:n" (1..5); 0 when not given
	rotate   bool          // "options rotate"
}

// equal reports whether c and o say the same.
func (c resolvConf) equal(o resolvConf) bool {
	return slices.Equal(c.servers, o.servers) && slices.Equal(c.search, o.search) &&
		c.ndots == o.ndots && c.timeout == o.timeout && c.attempts == o.attempts && c.rotate == o.rotate
}

// parseResolvConf reads a resolv.conf file. Nameservers get port; hostname
// gives the search domain when no search or domain line does (the part
// after its first dot). Lines it does not know, and values it cannot use,
// are ignored, as the system resolver ignores them.
func parseResolvConf(r io.Reader, port, hostname string) resolvConf {
	c := resolvConf{ndots: 1}
	searchSet := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 0 && (line[0] == ';' || line[0] == '#') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip, err := netip.ParseAddr(f[1]); err == nil && len(c.servers) < maxNameservers {
				c.servers = append(c.servers, net.JoinHostPort(ip.String(), port))
			}
		case "domain":
			c.search, searchSet = searchList(f[1:2]), true
		case "search":
			c.search, searchSet = searchList(f[1:]), true
		case "options":
			for _, o := range f[1:] {
				c.option(o)
			}
		}
	}
	if !searchSet {
		if i := strings.IndexByte(hostname, '.'); i >= 0 && i < len(hostname)-1 {
			c.search = searchList([]string{hostname[i+1:]})
		}
	}
	return c
}

// option applies one word of an options line.
func (c *resolvConf) option(o string) {
	name, val, _ := strings.Cut(o, ":")
	n, err := strconv.Atoi(val)
	switch {
	case name == "rotate":
		c.rotate = true
	case err != nil:
	case name == "ndots":
		c.ndots = min(max(n, 0), maxNdots)
	case name == "timeout":
		c.timeout = time.Duration(min(max(n, 1), maxTimeout)) * time.Second
	case name == "attempts":
		c.attempts = min(max(n, 1), maxAttempts)
	}
}

// searchList returns the valid domains of ds, fully qualified and lower
// case, without the root.
func searchList(ds []string) []string {
	var out []string
	for _, d := range ds {
		d = strings.ToLower(dns.Fqdn(d))
		if _, ok := dns.IsDomainName(d); ok && d != "." && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// resolvConfFile reads a resolv.conf file, and reads it again when a cheap
// stat says it changed (its size, modification time or the file itself:
// Kubernetes and resolvconf replace it). It is safe for concurrent use.
type resolvConfFile struct {
	path     string
	port     string // of the nameservers
	hostname string
	log      *slog.Logger

	mu      sync.Mutex
	info    os.FileInfo // of the file last read; nil before a read succeeded
	conf    resolvConf  // what current returned last
	have    bool        // current returned before
	missing bool        // the last stat or read failed (logged once per streak)
}

// newResolvConfFile reads the file at path once: a missing or unreadable
// file gives the fallback server, with a warning.
func newResolvConfFile(path, port string, log *slog.Logger) *resolvConfFile {
	host, _ := os.Hostname()
	f := &resolvConfFile{path: path, port: port, hostname: host, log: log}
	f.current()
	return f
}

// current returns the file's configuration, read again if it changed since
// the last read, and whether it differs from what the previous call
// returned. A file that is missing or unreadable keeps the configuration
// last read from it, or, if it was never read, gives the fallback server.
func (f *resolvConfFile) current() (resolvConf, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, err := os.Stat(f.path)
	if err == nil && f.info != nil && os.SameFile(info, f.info) &&
		info.Size() == f.info.Size() && info.ModTime().Equal(f.info.ModTime()) {
		return f.conf, false
	}
	var conf resolvConf
	if err == nil {
		conf, info, err = f.read()
	}
	if err != nil {
		if !f.missing {
			f.missing = true
			if f.info == nil {
				f.log.Warn("resolver: no resolver configuration; using the fallback server",
					slog.String("file", f.path), slog.String("server", fallbackServer), slog.Any("err", err))
			} else {
				f.log.Warn("resolver: resolver configuration unreadable; keeping what it said last",
					slog.String("file", f.path), slog.Any("err", err))
			}
		}
		if !f.have {
			f.conf, f.have = resolvConf{servers: []string{fallbackServer}, ndots: 1}, true
			return f.conf, true
		}
		return f.conf, false
	}
	f.missing = false
	if len(conf.servers) == 0 {
		f.log.Warn("resolver: resolver configuration names no server; using the fallback server",
			slog.String("file", f.path), slog.String("server", fallbackServer))
		conf.servers = []string{fallbackServer}
	}
	changed := !f.have || !conf.equal(f.conf)
	if changed && f.have {
		f.log.Info("resolver: resolver configuration changed; using the new one",
			slog.String("file", f.path), slog.Any("servers", conf.servers), slog.Any("search", conf.search),
			slog.Int("ndots", conf.ndots))
	}
	f.info, f.conf, f.have = info, conf, true
	return conf, changed
}

// read opens, stats and parses the file.
func (f *resolvConfFile) read() (resolvConf, os.FileInfo, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return resolvConf{}, nil, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return resolvConf{}, nil, err
	}
	return parseResolvConf(file, f.port, f.hostname), info, nil
}
