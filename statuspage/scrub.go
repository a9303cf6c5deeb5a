package statuspage

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxText caps the free text the page shows (reasons, DNS errors), in
// bytes.
const maxText = 300

// redacted replaces what the page must not show.
const redacted = "REDACTED"

var (
	// urlRE finds URLs in free text.
	urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)
	// secretRE finds "key=value" and "key: value" pairs whose value is a
	// secret, and HTTP credentials ("Authorization: Bearer x").
	secretRE = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|password|passwd|secret|token|api[-_]?key|cookie)(\s*[:=]\s*)((?:basic|bearer|digest|token)\s+)?[^\s&;,]+`)
)

// text returns s fit for an admin page: without the credentials of URLs
// (user information, query values) nor the values of "password=..."-like
// pairs, control characters as spaces, valid UTF-8, at most maxText bytes.
// The page's errors and reasons come from the library, which does not put
// secrets in them; this guards against a Prober's or a resolver's text
// that would.
func text(s string) string {
	if len(s) > 4*maxText {
		s = s[:4*maxText] // bounds the work below; cut again at the end
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = urlRE.ReplaceAllStringFunc(s, redactURL)
	s = secretRE.ReplaceAllString(s, "${1}${2}"+redacted)
	return truncate(s, maxText)
}

// redactURL returns raw without its user information and query values.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: keep the scheme alone.
		scheme, _, _ := strings.Cut(raw, "://")
		return scheme + "://" + redacted
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{redacted}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
