package vigilgrpc_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// A ClientConn that goes idle closes its resolver, and the upstream stops;
// when the channel leaves idle, the new upstream starts from what the old
// one knew: a backend ejected before gets no RPC after, while its ejection
// runs (its health service says SERVING throughout, so probes cannot end
// it). Without the Builder's memory (a nil one given), the new upstream
// starts from nothing and the backend gets RPCs again, which shows the
// test can fail.
func TestIdleChannelKeepsVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []vigilgrpc.Option
		want bool // RPCs reach the ejected backend after the channel left idle
	}{
		{"with the builder's memory", nil, false},
		{"without it", []vigilgrpc.Option{vigilgrpc.WithUpstreamOptions(vigil.WithMemory(nil))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dnsServer(t)
			bs := startBackends(t, "127.0.95.1", 2, backendOpts{})
			if err := d.SetA("idle.grpc.test", 60, ips(bs)...); err != nil {
				t.Fatal(err)
			}
			b := newBuilder(t, template(d), tc.opts...)
			target := "vigil:///idle.grpc.test:" + itoa(bs[0].Port)
			cc := dial(t, b, target, grpc.WithIdleTimeout(300*time.Millisecond))
			waitServed(t, cc, bs)

			// Eject bs[1] twice: the first ejection ends at passing probes,
			// the second, from probation, runs to its deadline (60s).
			bad := bs[1].Address("idle.grpc.test")
			bs[1].fail(codes.Internal)
			testutil.Eventually(t, 10*time.Second, "the backend ejected a second time", func() bool {
				_, _ = call(context.Background(), cc)
				u, ok := b.Upstream(target)
				if !ok {
					return false
				}
				tg, _ := u.Checker().Target(bad)
				return tg.Passive == health.Unhealthy && tg.Ejections >= 2
			})
			bs[1].fail(codes.OK)

			testutil.Eventually(t, 10*time.Second, "the channel idle and its upstream stopped", func() bool {
				_, running := b.Upstream(target)
				return cc.GetState() == connectivity.Idle && !running
			})
			before := bs[1].RPCs()
			for i := 0; i < 20 && bs[1].RPCs() == before; i++ {
				if _, err := call(context.Background(), cc); err != nil {
					t.Fatalf("RPC %d after the channel left idle: %v", i, err)
				}
			}
			if got := bs[1].RPCs() > before; got != tc.want {
				t.Fatalf("RPCs reached the backend ejected before the channel went idle: %v, want %v", got, tc.want)
			}
		})
	}
}
