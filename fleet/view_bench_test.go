package fleet

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkViewDecide measures one member's decisions on m addresses,
// each with the values of its r = 3 probers fresh: what a member does at
// each value heard is hearing it and deciding its address; it does not
// depend on the fleet's size, only on the values on the address.
func BenchmarkViewDecide(b *testing.B) {
	for _, m := range []int{10, 1000} {
		as := testAddrs(m)
		v := testView("self", "", 3, 2)
		v.setTargets(as)
		rev := uint64(0)
		for _, x := range v.addrs {
			for i := range 3 {
				rev++
				v.hear(x, fmt.Sprintf("m%d", i), record{V: FormatVersion, Status: statusHealthy, Epoch: 1, Window: time.Hour.Milliseconds()}, rev, t0, t0)
			}
		}
		b.Run(fmt.Sprintf("hear-and-decide-one/m=%d", m), func(b *testing.B) {
			b.ReportAllocs()
			x := v.addrs[as[0].Key()]
			for b.Loop() {
				rev++
				v.hear(x, "m1", record{V: FormatVersion, Status: statusHealthy, Epoch: 1, Window: time.Hour.Milliseconds()}, rev, t0, t0)
				v.step(x, t0)
				v.verdict(x, t0)
			}
		})
		b.Run(fmt.Sprintf("decide-all/m=%d", m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, x := range v.addrs {
					v.step(x, t0)
					v.verdict(x, t0)
				}
			}
		})
	}
}
