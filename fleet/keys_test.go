package fleet

import "testing"

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "api.internal", "127.0.0.1:80/api.internal", "[fe80::1%eth0]:443/x", "_", "a_b", "é", "client-7"} {
		e := escape(s)
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				t.Fatalf("escape(%q) = %q holds %q", s, e, c)
			}
		}
		back, err := unescape(e)
		if err != nil || back != s {
			t.Fatalf("unescape(escape(%q)) = %q, %v", s, back, err)
		}
	}
	if got := escape("127.0.0.1"); got != "127_2e0_2e0_2e1" {
		t.Fatalf("escape(127.0.0.1) = %q", got)
	}
}

func TestSplitKeyRefusesOtherSpellings(t *testing.T) {
	for _, k := range []string{"a._61", "a.b_", "a.b_2", "a.b_zz", "a..b", "_61"} {
		if _, err := splitKey(k); err == nil {
			t.Errorf("splitKey(%q) accepted", k)
		}
	}
	parts, err := splitKey(verdictKey("api.internal", "10.0.0.1:80/api.internal", "m 1"))
	if err != nil || len(parts) != 3 || parts[0] != "api.internal" || parts[1] != "10.0.0.1:80/api.internal" || parts[2] != "m 1" {
		t.Fatalf("splitKey(verdictKey(...)) = %q, %v", parts, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":2,"member":"m","name":"api","address":"10.0.0.1:80/api","status":"healthy","epoch":1,"window_ms":1250}`))
	f.Add([]byte(`{"v":2,"member":"m","name":"api","address":"10.0.0.1:80/api","status":"claim","epoch":1,"window_ms":1350,"delay_ms":100}`))
	f.Add([]byte(`{"v":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRecord(b); err == nil && (r.V != FormatVersion || r.Window <= 0 || r.Delay < 0 || r.Member == "") {
			t.Fatalf("accepted %+v", r)
		}
		_, _ = splitKey(string(b))
	})
}
