package fleet

import (
	"errors"
	"strings"
)

// Keys of the bucket are made of escaped tokens joined by dots:
//
//	<upstream>.<address>.<member>
//
// where <address> is "ip:port/hostname". Escaping keeps ASCII letters,
// digits and '-' and writes every other byte as '_' and two lower-case hex
// digits ("127.0.0.1" is "127_2e0_2e0_2e1"), so a token never holds a dot
// and any string has exactly one spelling. The empty string is "_".

const hexDigits = "0123456789abcdef"

// escape returns s as one key token.
func escape(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

var errToken = errors.New("fleet: malformed key token")

// unescape reverses escape.
func unescape(t string) (string, error) {
	switch t {
	case "":
		return "", errToken
	case "_":
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(t) {
			return "", errToken
		}
		hi, lo := unhex(t[i+1]), unhex(t[i+2])
		if hi < 0 || lo < 0 {
			return "", errToken
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// verdictKey returns the key of member's value on address (its canonical
// string) in upstream.
func verdictKey(upstream, address, member string) string {
	return escape(upstream) + "." + escape(address) + "." + escape(member)
}

// addressPattern returns the pattern of every member's key on address in
// upstream.
func addressPattern(upstream, address string) string {
	return escape(upstream) + "." + escape(address) + ".*"
}

// upstreamPattern returns the pattern of every key of upstream.
func upstreamPattern(upstream string) string { return escape(upstream) + ".>" }

// splitKey splits a key into its unescaped tokens.
func splitKey(key string) ([]string, error) {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		s, err := unescape(p)
		if err != nil || escape(s) != p { // one spelling only
			return nil, errToken
		}
		parts[i] = s
	}
	return parts, nil
}
