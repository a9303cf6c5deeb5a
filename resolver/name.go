package resolver

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// NormalizeName returns name as every package and topic knows it: case
// folded to lower case and one trailing dot dropped (not one escaped with a
// backslash, which is part of the last label). "API.internal." and
// "api.internal" are one upstream. It does not validate name; ValidateName
// does.
func NormalizeName(name string) string {
	if len(name) > 1 && dns.IsFqdn(name) { // not a dot escaped by a backslash
		name = name[:len(name)-1]
	}
	return strings.ToLower(name)
}

// ValidateName returns a *ConfigError for Field "Name" unless name is a
// domain name a query can be sent for: not empty, without spaces or control
// characters (DNS could carry them escaped, but no upstream's name has
// them: they are a mistake), not the root. Every package validates
// upstream names with it.
func ValidateName(name string) error {
	switch trimmed := strings.TrimSpace(name); {
	case trimmed == "":
		return &ConfigError{Field: "Name", Reason: "empty"}
	case trimmed != name:
		return &ConfigError{Field: "Name", Reason: fmt.Sprintf("%q has surrounding spaces", name)}
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return &ConfigError{Field: "Name", Reason: fmt.Sprintf("%q has a space or a control character", name)}
	}
	// IsDomainName accepts names such as `\0\` whose final backslash would
	// escape the dot that makes them fully qualified: a query for those
	// cannot be sent, so they are refused here.
	if _, ok := dns.IsDomainName(name); !ok || name == "." || !dns.IsFqdn(dns.Fqdn(name)) {
		return &ConfigError{Field: "Name", Reason: fmt.Sprintf("%q is not a domain name", name)}
	}
	return nil
}
