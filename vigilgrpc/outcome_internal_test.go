package vigilgrpc

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A pick whose RPC never reached a server, as grpc-go's DoneInfo tells it,
// is no outcome: no passive count, and no Result, which is what a Call's
// end publishes as it takes its latency sample under PeakEWMA. Every
// shape of DoneInfo grpc-go produces is covered: an empty one (the
// transport was not ready after the pick: grpc-go picks again), nothing
// sent (the stream could not be opened), and sent but nothing received
// with UNAVAILABLE (written to a connection that was closing, or refused
// unprocessed and retried transparently).
func TestDoneOfRPCsThatNeverLeft(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "transport is closing")
	deadline := status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	none := balancer.Outcome(0)
	for _, tc := range []struct {
		name string
		di   gbalancer.DoneInfo
		want balancer.Outcome // none: nothing
	}{
		{"transport not ready after the pick", gbalancer.DoneInfo{}, none},
		{"stream not opened", gbalancer.DoneInfo{Err: unavailable}, none},
		{"deadline while opening the stream", gbalancer.DoneInfo{Err: deadline}, none},
		{"stream on a closing connection, or refused unprocessed", gbalancer.DoneInfo{Err: unavailable, BytesSent: true}, none},
		{"served", gbalancer.DoneInfo{BytesSent: true, BytesReceived: true}, balancer.Success},
		{"UNAVAILABLE from the server", gbalancer.DoneInfo{Err: unavailable, BytesSent: true, BytesReceived: true}, balancer.ConnFailure},
		{"no answer before the deadline", gbalancer.DoneInfo{Err: deadline, BytesSent: true}, balancer.Timeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, a, results := outcomePicker(t)
			chk := p.h.chk
			before, _ := chk.Target(a)
			r, err := p.Pick(gbalancer.PickInfo{Ctx: t.Context()})
			if err != nil {
				t.Fatal(err)
			}
			r.Done(tc.di)
			after, _ := chk.Target(a)
			if tc.want == none && after.PassiveCounts != before.PassiveCounts {
				t.Fatalf("counted in the passive verdict: %+v, before %+v", after.PassiveCounts, before.PassiveCounts)
			}
			// A last RPC that was served: once its Result is in, every
			// earlier one is (a subscriber gets them in order).
			r, _ = p.Pick(gbalancer.PickInfo{Ctx: t.Context()})
			r.Done(gbalancer.DoneInfo{BytesSent: true, BytesReceived: true})
			want := []balancer.Outcome{balancer.Success}
			if tc.want != none {
				want = append([]balancer.Outcome{tc.want}, want...)
			}
			got := results(len(want))
			if !slices.Equal(got, want) {
				t.Fatalf("Results %v, want %v", got, want)
			}
		})
	}
}

// outcomePicker returns the picker of an upstream under PeakEWMA with one
// healthy, ready target, that target, and a function that waits for at
// least n Results of its Calls and returns them all.
func outcomePicker(t *testing.T) (*picker, resolver.Address, func(n int) []balancer.Outcome) {
	bus := events.New()
	t.Cleanup(bus.Close)
	up, err := vigil.New(vigil.Config{
		Name:     "outcome.internal",
		Port:     50051,
		Balancer: []balancer.Option{balancer.WithPolicy(balancer.PeakEWMA)},
	}, vigil.WithBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []balancer.Outcome
	t.Cleanup(events.Subscribe(bus, balancer.ResultTopic("outcome.internal"), func(r balancer.Result) {
		mu.Lock()
		got = append(got, r.Outcome)
		mu.Unlock()
	}))
	a := resolver.Address{IP: netip.MustParseAddr("10.0.0.1"), Port: 50051, Hostname: "outcome.internal"}
	up.Checker().SetTargets([]resolver.Address{a})
	h := &handle{name: up.String(), chk: up.Checker(), bal: up.Balancer(), out: newOutcomes(DefaultFailureCodes())}
	p := newPicker(h, map[resolver.Key]subConn{a.Key(): {sc: &fakeSubConn{}, addr: a, state: connectivity.Ready}})
	return p, a, func(n int) []balancer.Outcome {
		testutil.Eventually(t, 5*time.Second, "the Results", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n
		})
		mu.Lock()
		defer mu.Unlock()
		return append([]balancer.Outcome(nil), got...)
	}
}
