package fleet

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// BenchmarkViewEvaluate measures one member's decisions for a large fleet:
// ranking n members on each of m addresses (done when the live members
// change) and deciding every address (done at each verdict heard), with
// every prober's verdict fresh.
func BenchmarkViewEvaluate(b *testing.B) {
	for _, tc := range []struct{ n, m int }{{50, 10}, {1000, 100}} {
		as := make([]resolver.Address, tc.m)
		for i := range as {
			as[i] = resolver.Address{IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Port: 80, Hostname: "api"}
		}
		v := newView("m0", 2, time.Second)
		v.setTargets(as, t0)
		for j := 1; j < tc.n; j++ {
			v.register(fmt.Sprintf("m%d", j), time.Hour, 0, t0)
		}
		v.rank(t0)
		for _, x := range v.addrs {
			for _, id := range x.ranking[:2] {
				x.verdicts[id] = &heard{status: health.Healthy, epoch: 1, seq: 1, at: t0, window: time.Hour}
			}
		}
		b.Run(fmt.Sprintf("rank/n=%d/m=%d", tc.n, tc.m), func(b *testing.B) {
			for b.Loop() {
				v.live = nil
				v.rank(t0)
			}
		})
		b.Run(fmt.Sprintf("decide-all/n=%d/m=%d", tc.n, tc.m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, x := range v.addrs {
					_, _ = v.decide(x, t0)
				}
			}
		})
	}
}
