package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RecordType is the kind of record a Source resolves.
//
// The zero value, A, asks for the A and AAAA records of the name, as IP
// does, and publishes them as one set: it means what vigil.Config.Type's
// zero value means. For A records only, set Config.Family to IPv4Only; for
// AAAA records only, Type AAAA or Family IPv6Only.
type RecordType int

// The record types a Source can resolve.
const (
	A    RecordType = iota // the zero value: A and AAAA, as IP (A records only: Family IPv4Only)
	AAAA                   // IPv6 addresses only
	SRV                    // service records: target, port, weight, priority
	IP                     // A and AAAA of one name, queried concurrently, published as one set
)

// String returns "A", "AAAA", "SRV", "IP", or "RecordType(n)" for an unknown
// value.
func (t RecordType) String() string {
	switch t {
	case A:
		return "A"
	case AAAA:
		return "AAAA"
	case SRV:
		return "SRV"
	case IP:
		return "IP"
	}
	return "RecordType(" + strconv.Itoa(int(t)) + ")"
}

// Defaults for the zero values of Config's fields.
const (
	DefaultMinTTL       = time.Second
	DefaultMaxTTL       = 5 * time.Minute
	DefaultTimeout      = 2 * time.Second
	DefaultNXDomainHold = 30 * time.Second
)

// Config describes the name a Source follows. Zero values mean the
// documented defaults.
type Config struct {
	Name string // the name to resolve; required. A relative one is tried with the search list (see Search)
	// Type is what is resolved: A and AAAA records (A, the zero value, or
	// IP, which mean the same), AAAA records only, or SRV. For A records
	// only, leave Type alone and set Family to IPv4Only.
	Type         RecordType
	Port         uint16        // the port of every address for A, AAAA and IP; required for them, ignored for SRV
	Servers      []string      // "host:port" (a bare IP means port 53); empty: the nameservers of resolv.conf (see WithResolvConf)
	MinTTL       time.Duration // lower bound of the refresh interval; default 1s
	MaxTTL       time.Duration // upper bound of the refresh interval; default 5m
	Timeout      time.Duration // per query and server; default: resolv.conf's "options timeout" when Servers is empty, else 2s
	NXDomainHold time.Duration // keep the last set (an SRV target's last addresses) this long after NXDOMAIN/NODATA or a failed target lookup; default 30s
	HoldObsolete time.Duration // keep a vanished address this long before removing it; default 0
	Family       Family        // the address families of A and IP names and of SRV targets; default DualStack (both); for AAAA it must not be IPv4Only
	Backoff      Backoff       // the retries after failed resolutions; default 1s doubling to 30s, ±20%
	// Search is the search list of a relative Name (one without a
	// trailing dot), tried in order as the system resolver does (see
	// Ndots). Empty: resolv.conf's search list (or domain) when Servers is
	// empty, none when Servers is set. Set, it replaces resolv.conf's, and
	// applies with Servers too, on whatever port they listen.
	Search []string
	// Ndots is how many dots make a relative Name be tried as it is
	// before the search list: 0 means resolv.conf's "options ndots" when
	// Servers is empty, else 1 (the system resolver's default); a negative
	// value means 0 (always as it is first); at most 15. Set, it replaces
	// resolv.conf's.
	Ndots int
}

// Clone returns c with its slices copied, so that the caller may go on
// changing its own.
func (c Config) Clone() Config {
	c.Servers = slices.Clone(c.Servers)
	c.Search = slices.Clone(c.Search)
	return c
}

// withDefaults returns c with zero durations replaced by their defaults,
// and Type A, which means A and AAAA, as IP.
func (c Config) withDefaults() Config {
	if c.Type == A {
		c.Type = IP
	}
	if c.MinTTL == 0 {
		c.MinTTL = DefaultMinTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.NXDomainHold == 0 {
		c.NXDomainHold = DefaultNXDomainHold
	}
	c.Backoff = c.Backoff.withDefaults()
	return c
}

// validate checks c, which has its defaults applied, and returns it with
// its servers parsed ("ip:port") and its search domains fully qualified and
// lower case, each once.
func (c Config) validate() (Config, error) {
	if err := ValidateName(c.Name); err != nil {
		return c, err
	}
	switch c.Type {
	case AAAA, IP:
		if c.Port == 0 {
			return c, &ConfigError{Field: "Port", Reason: "must not be 0 for " + c.Type.String() + " records"}
		}
	case SRV:
	default:
		return c, &ConfigError{Field: "Type", Reason: "unknown " + c.Type.String()}
	}
	switch {
	case c.Family < DualStack || c.Family > IPv6Only:
		return c, &ConfigError{Field: "Family", Reason: "unknown " + c.Family.String()}
	case c.Type == AAAA && c.Family == IPv4Only:
		return c, &ConfigError{Field: "Family", Reason: c.Family.String() + " contradicts Type " + c.Type.String()}
	}
	if err := c.Backoff.validate(); err != nil {
		return c, err
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"MinTTL", c.MinTTL}, {"MaxTTL", c.MaxTTL}, {"Timeout", c.Timeout},
		{"NXDomainHold", c.NXDomainHold}, {"HoldObsolete", c.HoldObsolete},
	} {
		if d.v < 0 {
			return c, &ConfigError{Field: d.field, Reason: "negative duration " + d.v.String()}
		}
	}
	if c.MinTTL > c.MaxTTL {
		return c, &ConfigError{Field: "MinTTL", Reason: fmt.Sprintf("%v is greater than MaxTTL %v", c.MinTTL, c.MaxTTL)}
	}
	if c.Ndots > maxNdots {
		return c, &ConfigError{Field: "Ndots", Reason: fmt.Sprintf("%d is above %d", c.Ndots, maxNdots)}
	}
	servers := make([]string, 0, len(c.Servers))
	for i, s := range c.Servers {
		hp, err := ParseServer(s)
		if err != nil {
			return c, &ConfigError{Field: fmt.Sprintf("Servers[%d]", i), Reason: err.Error(), Err: err}
		}
		servers = append(servers, hp)
	}
	var search []string
	for i, d := range c.Search {
		if err := ValidateName(d); err != nil {
			var ce *ConfigError
			errors.As(err, &ce)
			return c, &ConfigError{Field: fmt.Sprintf("Search[%d]", i), Reason: ce.Reason}
		}
		if d = strings.ToLower(dns.Fqdn(d)); !slices.Contains(search, d) {
			search = append(search, d)
		}
	}
	c.Servers, c.Search = servers, search
	return c, nil
}

// ndots returns the ndots of c (validated), or fallback when c leaves it
// to resolv.conf.
func (c Config) ndots(fallback int) int {
	switch {
	case c.Ndots > 0:
		return c.Ndots
	case c.Ndots < 0:
		return 0
	}
	return fallback
}

// ParseServer reads a DNS server's address as Config.Servers takes it:
// "ip:port", "[ipv6]:port", or a bare IP, bracketed or not (port 53). It
// returns it in "ip:port" form; port 0 and host names are errors.
func ParseServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("%q: port 0", s)
		}
		return ap.String(), nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	return "", fmt.Errorf("%q is not ip:port", s)
}
