package urlport

import (
	"net/url"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		port uint16
		ok   bool
	}{
		{"http://a.test/", 80, true},
		{"https://a.test/", 443, true},
		{"wss://a.test/", 443, true},
		{"http://a.test:8080/", 8080, true},
		{"http://[::1]:9000/", 9000, true},
		{"ftp://a.test/", 0, false},
		{"http://a.test:0/", 0, false},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := Of(u); p != tc.port || ok != tc.ok {
			t.Errorf("Of(%s) = %d, %v; want %d, %v", tc.in, p, ok, tc.port, tc.ok)
		}
	}
}
