package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// candidates returns the fully qualified, lower-case names that name is
// tried as, in order, the way the system resolver does it with a search
// list and ndots:
//
//   - a name with a trailing dot is absolute: it is tried alone;
//   - a name with at least ndots dots is tried as it is first, then with
//     each search domain appended;
//   - a name with fewer dots is tried with each search domain appended
//     first, then as it is.
//
// Without a search list the name is tried alone. Candidates that are not
// valid domain names (too long) are left out, and none is tried twice.
func candidates(name string, search []string, ndots int) []string {
	abs := strings.ToLower(dns.Fqdn(name))
	if dns.IsFqdn(name) || len(search) == 0 {
		return []string{abs}
	}
	var searched []string
	for _, d := range search {
		c := abs + d // abs ends in the dot that joins it to d
		if _, ok := dns.IsDomainName(c); ok {
			searched = append(searched, c)
		}
	}
	var out []string
	if dns.CountLabel(abs)-1 >= ndots {
		out = append([]string{abs}, searched...)
	} else {
		out = append(searched, abs)
	}
	seen := make(map[string]bool, len(out))
	uniq := out[:0]
	for _, c := range out {
		if !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	return uniq
}
