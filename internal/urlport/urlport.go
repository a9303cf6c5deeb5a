// Package urlport tells which port a URL addresses, as net/http dials it.
package urlport

import (
	"net/url"
	"strconv"
)

// Of returns the port u addresses: its explicit port, else its scheme's
// default (80 for http and ws, 443 for https and wss). It reports false
// when the URL has no valid port and its scheme has no default.
func Of(u *url.URL) (uint16, bool) {
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		return uint16(n), err == nil && n != 0
	}
	switch u.Scheme {
	case "http", "ws":
		return 80, true
	case "https", "wss":
		return 443, true
	}
	return 0, false
}
