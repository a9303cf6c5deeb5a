package vigilgrpc

import (
	"net/netip"
	"testing"
	"time"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// An RPC that sent nothing to the server (grpc-go's Done with an empty
// DoneInfo for a connection that was not ready, or a failure before the
// first byte left) counts no passive outcome and no latency, and its pick
// is taken back; an RPC that reached the server counts.
func TestRPCThatNeverLeftIsNoOutcome(t *testing.T) {
	up, err := vigil.New(vigil.Config{Name: "never.internal", Port: 50051,
		Health:   health.Config{Active: health.Active{Healthy: health.HealthyRules{Interval: -1}, Unhealthy: health.UnhealthyRules{Interval: -1}}},
		Balancer: []balancer.Option{balancer.WithPolicy(balancer.PeakEWMA)}})
	if err != nil {
		t.Fatal(err)
	}
	a := resolver.Address{IP: netip.MustParseAddr("10.0.0.1"), Port: 50051, Hostname: "never.internal"}
	up.Checker().SetTargets([]resolver.Address{a})
	out := newOutcomes(DefaultFailureCodes())
	counts := func() (health.Counters, balancer.Load) {
		tg, _ := up.Checker().Target(a)
		for _, l := range up.Balancer().Loads() {
			if l.Address == a {
				return tg.PassiveCounts, l
			}
		}
		return tg.PassiveCounts, balancer.Load{}
	}

	for _, di := range []gbalancer.DoneInfo{
		{}, // the connection was not ready
		{Err: status.Error(codes.Unavailable, "connection refused")},  // failed before its first byte left
		{Err: status.Error(codes.DeadlineExceeded, "before sending")}, // its deadline passed while it waited
	} {
		call, err := up.Balancer().PickCall()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // a latency a sample would record
		done(out, call, di)
		if c, l := counts(); c != (health.Counters{}) || l.InFlight != 0 || l.Picks != 0 || l.Latency != 0 {
			t.Fatalf("after an RPC that never left (%+v): passive %+v, load %+v; want nothing counted", di, c, l)
		}
	}

	call, err := up.Balancer().PickCall()
	if err != nil {
		t.Fatal(err)
	}
	done(out, call, gbalancer.DoneInfo{BytesSent: true, BytesReceived: true})
	if c, l := counts(); c.Successes != 1 || l.Picks != 1 || l.InFlight != 0 || l.Latency == 0 {
		t.Fatalf("after an RPC that reached the server: passive %+v, load %+v; want one success, one pick and a latency", c, l)
	}
}
