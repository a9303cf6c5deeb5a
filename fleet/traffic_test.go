package fleet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-go/vigil/fleet"
)

// traffic is what a fleet of n members costs NATS, measured over a few
// probe intervals once it has settled.
type traffic struct {
	n         int
	perMember float64 // messages each member received per second, mean
	maxMember float64 // ... the busiest member
	server    float64 // messages the server received and sent per second
	writes    float64 // values written per second, all members
}

// measureTraffic runs n members, each with its own connection, against
// backends loopback backends (starting at first), probing every interval,
// and counts for intervals intervals the messages each connection
// receives and those the server handles.
func measureTraffic(tb testing.TB, first string, n, backends int, interval time.Duration, intervals int) traffic {
	w := newWorld(tb, first, backends, interval)
	conns := make([]*nats.Conn, n)
	for i := range n {
		nc, err := nats.Connect(w.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.Timeout(10*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(nc.Close)
		conns[i] = nc
		w.addClient(fmt.Sprintf("client-%02d", i)).join(fleet.Config{Conn: nc})
	}
	w.waitProbers(n, fleet.DefaultProbers)
	time.Sleep(2 * interval) // the claims' echoes are delivered
	inBefore := make([]uint64, n)
	for i, nc := range conns {
		inBefore[i] = nc.Stats().InMsgs
	}
	var writesBefore uint64
	for _, c := range w.clients {
		writesBefore += c.fleet.Stats().Writes
	}
	sIn, sOut := w.nats.Msgs()
	start := time.Now()
	time.Sleep(time.Duration(intervals) * interval)
	secs := time.Since(start).Seconds()
	tr := traffic{n: n}
	for i, nc := range conns {
		got := float64(nc.Stats().InMsgs-inBefore[i]) / secs
		tr.perMember += got / float64(n)
		tr.maxMember = max(tr.maxMember, got)
	}
	var writes uint64
	for _, c := range w.clients {
		writes += c.fleet.Stats().Writes
	}
	tr.writes = float64(writes-writesBefore) / secs
	in, out := w.nats.Msgs()
	tr.server = float64(in-sIn+out-sOut) / secs
	for _, c := range w.clients {
		c.stop()
	}
	return tr
}

// What a member receives does not grow with the fleet: each member watches
// only the keys of the addresses it holds, on which r members write once
// per interval, whatever the number of members. From 4 to 24 members the
// messages a member receives per second stay within 1.5 times; the
// server's total grows linearly. (Counts of messages, not timings.)
func TestTrafficPerMemberDoesNotGrowWithTheFleet(t *testing.T) {
	const backends = 4
	interval := 500 * time.Millisecond
	small := measureTraffic(t, "127.0.150.1", 4, backends, interval, 8)
	large := measureTraffic(t, "127.0.150.11", 24, backends, interval, 8)
	for _, tr := range []traffic{small, large} {
		t.Logf("N = %d: %.1f messages per member per second (busiest %.1f), server %.0f a second, %.1f writes a second",
			tr.n, tr.perMember, tr.maxMember, tr.server, tr.writes)
	}
	// r = 3 probers write on each of 4 addresses twice a second: 24
	// deliveries a second to each member, plus its own writes' answers.
	if small.perMember < 20 {
		t.Fatalf("%.1f messages per member per second at N = 4: the measure misses the watch", small.perMember)
	}
	if ratio := large.perMember / small.perMember; ratio > 1.5 {
		t.Errorf("a member receives %.2f times as much at N = 24 as at N = 4, want at most 1.5", ratio)
	}
	if ratio := large.server / small.server; ratio > 6*1.5 {
		t.Errorf("the server handles %.1f times as much at N = 24 as at N = 4, want about 6 (linear)", ratio)
	}
}
