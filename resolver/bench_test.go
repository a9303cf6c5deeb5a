package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/dnstest"
)

// benchDelay is how long the in-process server takes to answer each query
// in BenchmarkResolve: a round trip to a nearby resolver, so that the wall
// time of a resolution shows how many round trips it waits for in a row.
const benchDelay = 2 * time.Millisecond

// BenchmarkResolve measures one resolution of each kind against the
// in-process server with benchDelay per query: its wall time (ns/op) and
// the queries it sends (queries/op). SRV has three targets, each with an A
// and an AAAA record, with glue for both families in the SRV reply or none.
func BenchmarkResolve(b *testing.B) {
	srv, err := dnstest.Start("")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, err := range []error{
		srv.SetA("web.test", 60, "10.0.0.1"), srv.SetAAAA("web.test", 60, "fd00::1"),
		srv.SetA("a.test", 60, "10.0.0.2"), srv.SetAAAA("a.test", 60, "fd00::2"),
		srv.SetA("b.test", 60, "10.0.0.3"), srv.SetAAAA("b.test", 60, "fd00::3"),
		srv.SetA("c.test", 60, "10.0.0.4"), srv.SetAAAA("c.test", 60, "fd00::4"),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, glue := range []bool{false, true} {
		name := map[bool]string{false: "_noglue._tcp.svc.test", true: "_glue._tcp.svc.test"}[glue]
		srv.SetSRV(name, 60,
			dnstest.SRV{Target: "a.test", Port: 8001, Glue: glue},
			dnstest.SRV{Target: "b.test", Port: 8002, Glue: glue},
			dnstest.SRV{Target: "c.test", Port: 8003, Glue: glue})
		srv.SetDelay(name, benchDelay)
	}
	for _, n := range []string{"web.test", "a.test", "b.test", "c.test"} {
		srv.SetDelay(n, benchDelay)
	}
	tests := []struct {
		name  string
		cfg   Config
		addrs int
	}{
		{"A", Config{Name: "web.test", Type: A, Port: 80}, 1},
		{"IP", Config{Name: "web.test", Type: IP, Port: 80}, 2},
		{"IP IPv4Only", Config{Name: "web.test", Type: IP, Port: 80, Family: IPv4Only}, 1},
		{"SRV 3 targets, no glue", Config{Name: "_noglue._tcp.svc.test", Type: SRV}, 6},
		{"SRV 3 targets, no glue, IPv4Only", Config{Name: "_noglue._tcp.svc.test", Type: SRV, Family: IPv4Only}, 3},
		{"SRV 3 targets, glue", Config{Name: "_glue._tcp.svc.test", Type: SRV}, 6},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.cfg.Servers = []string{srv.Addr()}
			s, err := NewSource(tt.cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			p, ctx := s.plan(), context.Background()
			q := srv.Queries()
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.lk.resolve(ctx, p, s.cfg, "")
				if err != nil || res.err != nil || len(res.addrs) != tt.addrs {
					b.Fatalf("%d addresses, %v, %v", len(res.addrs), err, res.err)
				}
			}
			b.ReportMetric(float64(srv.Queries()-q)/float64(b.N), "queries/op")
		})
	}
}
