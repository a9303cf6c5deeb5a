package fleet

import (
	"testing"

	"github.com/vigil-go/vigil/health"
)

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

// FuzzDecode feeds hostile values to the decoder and to a member's view:
// a value is accepted only when well formed, and whatever it says of
// durations, once heard it counts at most for the reader's own windows
// (a verdict verdictMax, a claim claimMax, a claim's delay the healthy
// interval), however long it asks.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":2,"member":"m","name":"api","address":"10.0.0.1:80/api","status":"healthy","epoch":1,"window_ms":1250}`))
	f.Add([]byte(`{"v":2,"member":"m","name":"api","address":"10.0.0.1:80/api","status":"claim","epoch":1,"window_ms":1350,"delay_ms":100}`))
	f.Add([]byte(`{"v":3}`))
	f.Add([]byte(`{"v":2,"member":"forger","name":"api","address":"10.0.0.1:80/api","status":"unhealthy","epoch":99999999999999,"window_ms":3600000}`))
	f.Add([]byte(`{"v":2,"member":"forger","name":"api","address":"10.0.0.1:80/api","status":"claim","epoch":1,"window_ms":9223372036854775807,"delay_ms":9223372036854775807}`))
	addr := testAddrs(1)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = splitKey(string(b))
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if r.V != FormatVersion || r.Window <= 0 || r.Delay < 0 || r.Member == "" {
			t.Fatalf("accepted %+v", r)
		}
		v := testView("reader", "", 3, 2)
		v.setTargets(addr)
		x := v.addrs[addr[0].Key()]
		if x == nil {
			t.Fatal("the reader's view does not hold its own address")
		}
		v.hear(x, r.Member, r, 1, t0, t0)
		e := x.entries[r.Member]
		if e == nil {
			return
		}
		bound := v.verdictMax
		if e.status == health.Unknown {
			bound = v.claimMax
		}
		if d := e.until.Sub(t0); d > bound || e.delay > v.healthy || e.delay < 0 {
			t.Fatalf("%s counts for %v with a delay of %v; the reader's bounds are %v and %v", b, d, e.delay, bound, v.healthy)
		}
	})
}
