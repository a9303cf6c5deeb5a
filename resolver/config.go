package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RecordType is the kind of record a Source resolves.
type RecordType int

// The record types a Source can resolve.
const (
	A    RecordType = iota // IPv4 addresses; the zero value
	AAAA                   // IPv6 addresses
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

// qtype returns the DNS query type for t.
func (t RecordType) qtype() uint16 {
	switch t {
	case AAAA:
		return dns.TypeAAAA
	case SRV:
		return dns.TypeSRV
	}
	return dns.TypeA
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
	Name         string        // the name to resolve; required. Relative names follow resolv.conf's search and ndots when Servers is empty
	Type         RecordType    // A (the zero value), AAAA, SRV or IP (A and AAAA)
	Port         uint16        // the port of every address for A, AAAA and IP; required for them, ignored for SRV
	Servers      []string      // "host:port" (a bare IP means port 53); empty: the nameservers of resolv.conf (see WithResolvConf)
	MinTTL       time.Duration // lower bound of the refresh interval; default 1s
	MaxTTL       time.Duration // upper bound of the refresh interval; default 5m
	Timeout      time.Duration // per query and server; default: resolv.conf's "options timeout" when Servers is empty, else 2s
	NXDomainHold time.Duration // keep the last set (an SRV target's last addresses) this long after NXDOMAIN/NODATA or a failed target lookup; default 30s
	HoldObsolete time.Duration // keep a vanished address this long before removing it; default 0
	Family       Family        // the address families of IP names and SRV targets; default DualStack (both); for A and AAAA it must not contradict Type
	Backoff      Backoff       // the retries after failed resolutions; default 1s doubling to 30s, ±20%
}

// withDefaults returns c with zero durations replaced by their defaults.
func (c Config) withDefaults() Config {
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

// validate checks c, which has its defaults applied, and returns the parsed
// servers ("ip:port") of c.Servers.
func (c Config) validate() ([]string, error) {
	if err := ValidateName(c.Name); err != nil {
		return nil, err
	}
	switch c.Type {
	case A, AAAA, IP:
		if c.Port == 0 {
			return nil, &ConfigError{Field: "Port", Reason: "must not be 0 for " + c.Type.String() + " records"}
		}
	case SRV:
	default:
		return nil, &ConfigError{Field: "Type", Reason: "unknown " + c.Type.String()}
	}
	switch {
	case c.Family < DualStack || c.Family > IPv6Only:
		return nil, &ConfigError{Field: "Family", Reason: "unknown " + c.Family.String()}
	case c.Type == A && c.Family == IPv6Only, c.Type == AAAA && c.Family == IPv4Only:
		return nil, &ConfigError{Field: "Family", Reason: c.Family.String() + " contradicts Type " + c.Type.String()}
	}
	if err := c.Backoff.validate(); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"MinTTL", c.MinTTL}, {"MaxTTL", c.MaxTTL}, {"Timeout", c.Timeout},
		{"NXDomainHold", c.NXDomainHold}, {"HoldObsolete", c.HoldObsolete},
	} {
		if d.v < 0 {
			return nil, &ConfigError{Field: d.field, Reason: "negative duration " + d.v.String()}
		}
	}
	if c.MinTTL > c.MaxTTL {
		return nil, &ConfigError{Field: "MinTTL", Reason: fmt.Sprintf("%v is greater than MaxTTL %v", c.MinTTL, c.MaxTTL)}
	}
	servers := make([]string, 0, len(c.Servers))
	for i, s := range c.Servers {
		hp, err := ParseServer(s)
		if err != nil {
			return nil, &ConfigError{Field: fmt.Sprintf("Servers[%d]", i), Reason: err.Error()}
		}
		servers = append(servers, hp)
	}
	return servers, nil
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
