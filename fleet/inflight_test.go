package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// A probe still in flight when the fleet takes its address away from this
// member (a better-ranked member takes its place) ends dropped: its result
// never overrides the fleet's verdict, which this member applies from then
// on. (Before, the late result overwrote the applied verdict, and the
// fleet, having applied it already, never applied it again.)
func TestLateProbeResultDoesNotOverrideTheFleet(t *testing.T) {
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.151.1", 1, interval)
	a := w.addrs[0]
	cfg := fleet.Config{Probers: 1, Quorum: fleet.QuorumAny}

	started, release := make(chan struct{}, 1), make(chan struct{})
	hangs := make(chan bool, 1) // holds whether probes hang
	hangs <- false
	hc := healthConfig(interval)
	hc.Active.Timeout = 10 * time.Second
	hc.Active.Unhealthy.TCPFailures = 1
	hc.Active.Prober = health.ProberFunc(func(ctx context.Context, _ resolver.Address) (health.ProbeOutcome, string) {
		hang := <-hangs
		hangs <- hang
		if !hang {
			return health.ProbeSuccess, "ok"
		}
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return health.ProbeTCPFailure, "connection refused (a probe that ends late)"
	})
	first := w.addClientWith("first", hc)
	first.join(cfg)
	w.waitSettled(1, 1)

	// Its next probe hangs; meanwhile a better-ranked member joins and
	// takes the address.
	<-hangs
	hangs <- true
	<-started
	better := madeUp("better", a, []string{"first"}, 1)[0]
	w.addClient(better).join(cfg)
	testutil.Eventually(t, 10*time.Second, "the first member applying the newcomer's verdict", func() bool {
		r := first.role(a)
		return r.Kind == fleet.RoleApplying && r.From == better && r.Verdict == health.Healthy
	})
	dropped := first.chk.Stats().ProbesDropped
	close(release) // the late probe ends, a failure
	for range 10 {
		time.Sleep(interval / 2)
		if st := first.chk.Status(a); st != health.Healthy {
			t.Fatalf("the first member holds %v %v: a late probe result overrode the fleet's verdict", a, st)
		}
	}
	if first.chk.Stats().ProbesDropped == dropped {
		t.Error("the late probe was not counted as dropped")
	}
}
