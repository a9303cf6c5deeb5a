package resolver

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// manyA returns n addresses 10.1.x.y.
func manyA(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return out
}

// TestEDNSFormErrFallback: a server that answers FORMERR to EDNS0 is asked
// again without it, answers, and is then asked without EDNS0 until the
// memory ends.
func TestEDNSFormErrFallback(t *testing.T) {
	for _, n := range []int{1, 100} { // 100 records do not fit in 512 bytes: TCP
		t.Run(strconv.Itoa(n)+" records", func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("web.test", 0, manyA(n)...))
			var withEDNS atomic.Int64
			srv.SetMisbehavior(func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
				if req.IsEdns0() != nil {
					withEDNS.Add(1)
				}
				return dnstest.NoEDNS(w, req, reply)
			})
			bus := newBus(t)
			failures := record(t, bus, FailureTopic("web.test"))
			const memory = 300 * time.Millisecond
			s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}, MinTTL: 20 * time.Millisecond}, bus,
				withNoEDNSFor(memory))
			start(t, s)
			began := time.Now()
			testutil.Eventually(t, patience, "the set", func() bool { return len(s.Addresses()) == n })
			q := srv.Queries()
			testutil.Eventually(t, patience, "refreshes", func() bool { return srv.Queries() >= q+3 })
			if got := withEDNS.Load(); got != 1 && time.Since(began) < memory {
				t.Fatalf("%d queries with EDNS0 within the memory, want 1", got)
			}
			testutil.Eventually(t, patience, "EDNS0 tried again after the memory", func() bool { return withEDNS.Load() >= 2 })
			if f := failures.all(); len(f) != 0 {
				t.Fatalf("failures %v, want none", f)
			}
			if n > 30 && srv.TCPQueries() == 0 {
				t.Fatal("no TCP query for a reply over 512 bytes")
			}
		})
	}
}

// TestUnusableUDPReplyRetriedOverTCP: a truncated reply cut in the middle
// of a record, or one longer than the 4096 bytes asked for, is asked again
// over TCP rather than failing as malformed.
func TestUnusableUDPReplyRetriedOverTCP(t *testing.T) {
	tests := []struct {
		name string
		n    int
		misb dnstest.Misbehavior
		tcp  bool
	}{
		{"cut mid-record with TC", 50, dnstest.TruncateMidRecord(100), true},
		{"longer than 4096 bytes", 400, dnstest.IgnoreUDPSize, true},
		{"long, within 4096 bytes", 150, dnstest.IgnoreUDPSize, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			must(t, srv.SetA("web.test", 60, manyA(tt.n)...))
			srv.SetMisbehavior(tt.misb)
			bus := newBus(t)
			failures := record(t, bus, FailureTopic("web.test"))
			s := mustSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{srv.Addr()}}, bus)
			start(t, s)
			testutil.Eventually(t, patience, "the set", func() bool { return len(s.Addresses()) == tt.n })
			if f := failures.all(); len(f) != 0 {
				t.Fatalf("failures %v, want none", f)
			}
			if got := srv.TCPQueries(); got != map[bool]int64{true: 1, false: 0}[tt.tcp] {
				t.Fatalf("%d TCP queries, want TCP %v", got, tt.tcp)
			}
		})
	}
}
