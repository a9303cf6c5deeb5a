package bindtest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBrokenDelegation: names in the zone are answered, names under a
// broken child zone get SERVFAIL, quickly (the forwarder's port is closed).
func TestBrokenDelegation(t *testing.T) {
	ns := StartConfig(t, Config{Zone: "vigil.test", Records: []string{"www 1 IN A 10.0.0.1"}, Broken: []string{"broken"}})
	ask := func(name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, ns.Addr())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	if r := ask("www.vigil.test."); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("www: %v", r)
	}
	began := time.Now()
	if r := ask("x.broken.vigil.test."); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("x.broken: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	t.Logf("SERVFAIL after %v", time.Since(began))
	ns.Add(t, "www 1 IN A 10.0.0.2")
	if r := ask("www.vigil.test."); len(r.Answer) != 2 {
		t.Fatalf("after the update: %v", r)
	}
}
