package subset_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/subset"
)

// spread returns the clients per address of the fleet ids over m
// addresses, each client keeping k: the fullest over the mean, and the
// emptiest over the mean.
func spread(ids []string, m, k int) (maxRatio, minRatio float64) {
	as := addrs(m)
	count := make(map[resolver.Key]int, m)
	for _, id := range ids {
		s, _ := subset.New(id, k)
		for _, a := range s.Filter(as) {
			count[a.Key()]++
		}
	}
	lo, hi := len(ids), 0
	for _, a := range as {
		lo, hi = min(lo, count[a.Key()]), max(hi, count[a.Key()])
	}
	mean := float64(len(ids)*k) / float64(m)
	return float64(hi) / mean, float64(lo) / mean
}

func fleet(n int, name func(int) string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = name(i)
	}
	return ids
}

// 1,000 clients named client-0 to client-999, each keeping 10 of 100
// addresses: the fullest address has at most 1.25 times the mean.
func TestSpreadOfAThousandClients(t *testing.T) {
	hi, lo := spread(fleet(1000, func(i int) string { return fmt.Sprintf("client-%d", i) }), 100, 10)
	t.Logf("clients per address: max/mean %.2f, min/mean %.2f", hi, lo)
	if hi > 1.25 {
		t.Fatalf("max/mean = %.2f, want at most 1.25", hi)
	}
	if lo < 0.7 {
		t.Fatalf("min/mean = %.2f: an address is starved", lo)
	}
}

// BenchmarkSpread reports the spread of clients per address (max/mean)
// over fleets of random ids: its median, 90th percentile and worst over
// 100 fleets, and how many of them stay within 1.25. It measures the
// algorithm, not the machine: run it with -benchtime=1x.
func BenchmarkSpread(b *testing.B) {
	for _, tc := range []struct{ n, m, k int }{{1000, 100, 10}, {1000, 100, 20}, {10000, 100, 10}} {
		b.Run(fmt.Sprintf("n=%d/m=%d/k=%d", tc.n, tc.m, tc.k), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var ratios []float64
			for b.Loop() {
				ratios = ratios[:0]
				for range 100 {
					ids := fleet(tc.n, func(int) string { return strconv.FormatUint(r.Uint64(), 36) })
					hi, _ := spread(ids, tc.m, tc.k)
					ratios = append(ratios, hi)
				}
			}
			slices.Sort(ratios)
			within := 0
			for _, x := range ratios {
				if x <= 1.25 {
					within++
				}
			}
			b.ReportMetric(ratios[50], "median-max/mean")
			b.ReportMetric(ratios[90], "p90-max/mean")
			b.ReportMetric(ratios[99], "worst-max/mean")
			b.ReportMetric(float64(within), "fleets-within-1.25/100")
		})
	}
}

// BenchmarkFilter measures one client's subsetting of 100 addresses, which
// the checker runs at every address-set change.
func BenchmarkFilter(b *testing.B) {
	s, _ := subset.New("client-1", 10)
	as := addrs(100)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Filter(as)
	}
}
