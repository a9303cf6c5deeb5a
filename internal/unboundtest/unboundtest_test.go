package unboundtest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/internal/bindtest"
	"github.com/vigil-go/vigil/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCachesAndServesExpired: through unbound, a record's TTL counts down;
// once BIND is stopped and the record expired, unbound still answers with
// it (serve-expired), with the reply TTL set (7, which the count-down never
// gives); names outside the stub zones are refused.
func TestCachesAndServesExpired(t *testing.T) {
	ns := bindtest.Start(t, "vigil.test", "www 3 IN A 10.0.0.1")
	ub := Start(t, Config{Stubs: map[string]string{"vigil.test": ns.Addr()}, ServeExpiredReplyTTL: 7})
	ask := func(name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, ub.Addr())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	first := ask("www.vigil.test.")
	if first.Rcode != dns.RcodeSuccess || len(first.Answer) != 1 || first.Answer[0].Header().Ttl > 3 {
		t.Fatalf("first answer %v", first)
	}
	testutil.Eventually(t, 3*time.Second, "the TTL counting down", func() bool {
		r := ask("www.vigil.test.")
		return len(r.Answer) == 1 && r.Answer[0].Header().Ttl < first.Answer[0].Header().Ttl
	})
	if r := ask("example.com."); r.Rcode != dns.RcodeRefused {
		t.Fatalf("outside the stub zones: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}

	ns.Stop(t)
	testutil.Eventually(t, 15*time.Second, "the expired record served", func() bool {
		r := ask("www.vigil.test.")
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("with BIND stopped: %v, want the record", r)
		}
		return r.Answer[0].Header().Ttl == 7
	})
}
