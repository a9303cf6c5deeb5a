package resolver

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/bindtest"
	"github.com/vigil-go/vigil/internal/unboundtest"
)

// BenchmarkFollowThroughUnbound measures how long a record changed at BIND
// takes to reach a Source that follows it through Unbound, per MinTTL.
// Each operation changes the record (TTL 2) at a random moment of the
// cache's count-down and waits for the Change. It reports:
//
//   - ms-to-change: from the update at BIND to the Change;
//   - ms-left: what the cache had left of the old record then (its TTL,
//     whole seconds, plus the fraction the whole-second clock hides, as
//     measured below);
//   - ms-late, ms-late-max: from the first moment the cache gave out the
//     new record (a separate client polling it every 5ms) to the Change:
//     how late the Source is beyond the remaining TTL;
//   - queries/op: the queries the Source sent per operation (one TTL
//     cycle or so): what a smaller MinTTL costs.
func BenchmarkFollowThroughUnbound(b *testing.B) {
	if _, err := bindtest.FindNamed(); err != nil {
		b.Skip(err)
	}
	if _, err := unboundtest.FindUnbound(); err != nil {
		b.Skip(err)
	}
	ns := bindtest.Start(b, "vigil.test", "www 2 IN A 10.0.0.1")
	ub := unboundtest.Start(b, unboundtest.Config{Stubs: map[string]string{"vigil.test": ns.Addr()}})
	for _, minTTL := range []time.Duration{time.Second, 100 * time.Millisecond} {
		b.Run("MinTTL "+minTTL.String(), func(b *testing.B) {
			bus := events.New()
			defer bus.Close()
			changes := make(chan Change, 16)
			defer events.Subscribe(bus, Topic("www.vigil.test"), func(c Change) { changes <- c })()
			var queries atomic.Int64
			defer events.Subscribe(bus, QueryTopic("www.vigil.test"), func(Query) { queries.Add(1) })()
			s, err := NewSource(Config{Name: "www.vigil.test", Port: 80, Servers: []string{ub.Addr()}, MinTTL: minTTL}, bus)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-changes
			q := queries.Load()
			var took, late, left time.Duration
			var lateMax time.Duration
			i := 0
			for b.Loop() {
				i++
				next := "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+2)
				time.Sleep(time.Duration(i*397%2000) * time.Millisecond) // a moment of the count-down
				ns.ReplaceRRset(b, "www.vigil.test", dns.TypeA, "www 2 IN A "+next)
				changed := time.Now()
				fresh := pollFresh(b, ub.Addr(), next)
				var c Change
				for c = range changes {
					if slices.Equal(ips(c.Addresses), []string{next}) {
						break
					}
				}
				at := time.Now()
				took += at.Sub(changed)
				left += fresh.Sub(changed)
				l := max(at.Sub(fresh), 0)
				late += l
				lateMax = max(lateMax, l)
			}
			n := float64(b.N)
			b.ReportMetric(float64(took.Milliseconds())/n, "ms-to-change")
			b.ReportMetric(float64(left.Milliseconds())/n, "ms-left")
			b.ReportMetric(float64(late.Milliseconds())/n, "ms-late")
			b.ReportMetric(float64(lateMax.Milliseconds()), "ms-late-max")
			b.ReportMetric(float64(queries.Load()-q)/n, "queries/op")
		})
	}
}

// pollFresh asks server every 5ms until it answers www.vigil.test with
// want, and returns when it first did.
func pollFresh(b *testing.B, server, want string) time.Time {
	m := new(dns.Msg)
	m.SetQuestion("www.vigil.test.", dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, _, err := c.Exchange(m, server); err == nil && len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == want {
				return time.Now()
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("the cache never gave out %s", want)
	return time.Time{}
}
