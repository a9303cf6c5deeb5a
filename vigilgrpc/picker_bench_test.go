package vigilgrpc

import (
	"net/netip"
	"sync/atomic"
	"testing"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/resolver"
)

// fakeSubConn stands for a connected SubConn.
type fakeSubConn struct{ gbalancer.SubConn }

// benchPicker returns a picker over n healthy, ready targets of an
// upstream that is not running: what is measured is the pick alone.
func benchPicker(b *testing.B, n int) *picker {
	up, err := vigil.New(vigil.Config{Name: "bench.internal", Port: 50051})
	if err != nil {
		b.Fatal(err)
	}
	chk := up.Checker()
	conns := make(map[resolver.Key]subConn, n)
	var addrs []resolver.Address
	for i := range n {
		a := resolver.Address{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Port: 50051, Hostname: "bench.internal"}
		addrs = append(addrs, a)
		conns[a.Key()] = subConn{sc: &fakeSubConn{}, addr: a, state: connectivity.Ready}
	}
	chk.SetTargets(addrs)
	h := &handle{name: up.String(), chk: chk, bal: up.Balancer(), out: newOutcomes(DefaultFailureCodes())}
	return newPicker(h, conns)
}

// rotation is the least a picker does: grpc-go's round_robin picker is an
// atomic add and an index into its ready SubConns (plus its child's pick).
type rotation struct {
	scs  []gbalancer.SubConn
	next atomic.Uint32
}

func (r *rotation) Pick(gbalancer.PickInfo) (gbalancer.PickResult, error) {
	return gbalancer.PickResult{SubConn: r.scs[int(r.next.Add(1)-1)%len(r.scs)]}, nil
}

// BenchmarkPick is one pick of the vigil picker with its Done (a passive
// success), from 3 healthy ready targets, against a bare rotation.
func BenchmarkPick(b *testing.B) {
	served := gbalancer.DoneInfo{BytesSent: true, BytesReceived: true} // an empty DoneInfo is a pick never sent
	info := gbalancer.PickInfo{FullMethodName: "/grpc.testing.TestService/EmptyCall", Ctx: b.Context()}
	b.Run("vigil", func(b *testing.B) {
		p := benchPicker(b, 3)
		b.ReportAllocs()
		for range b.N {
			r, err := p.Pick(info)
			if err != nil {
				b.Fatal(err)
			}
			r.Done(served)
		}
	})
	b.Run("vigil/parallel", func(b *testing.B) {
		p := benchPicker(b, 3)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, _ := p.Pick(info)
				r.Done(served)
			}
		})
	})
	b.Run("rotation", func(b *testing.B) {
		r := &rotation{scs: []gbalancer.SubConn{&fakeSubConn{}, &fakeSubConn{}, &fakeSubConn{}}}
		b.ReportAllocs()
		for range b.N {
			if _, err := r.Pick(info); err != nil {
				b.Fatal(err)
			}
		}
	})
}
