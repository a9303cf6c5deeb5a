package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
)

// demo -fleet, in JSON, with its status page: with the defaults, the
// client whose path to a backend is broken holds it unhealthy and sends it
// nothing, the fleet holds it healthy, every other client keeps sending it
// traffic (counted at the backend), and the broken client is reported: in
// its own Stats and Roles, in every other member's Stats and Roles, and on
// its status page. With QuorumAny, the members that do not probe the
// backend apply the broken client's failure and send it less.
func TestFleetStory(t *testing.T) {
	var out testutil.Buffer
	type result struct {
		sum fleetSummary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := playFleet(context.Background(), fast, "127.0.0.1:0", newNarrator(&out, true))
		done <- result{sum, err}
	}()
	url := statusURL(t, &out)
	testutil.Eventually(t, 30*time.Second, "the status page showing 127.0.0.12 unhealthy, probed by its client, which disagrees", func() bool {
		p, ok := getPage(url)
		if !ok || len(p.Upstreams) != 1 || len(p.Upstreams[0].Addresses) != 4 {
			return false
		}
		for _, a := range p.Upstreams[0].Addresses {
			switch r := a.Fleet; {
			case r == nil || r.Kind != "prober" && r.Kind != "follower":
				return false
			case strings.HasPrefix(a.Address, "127.0.0.12:") && (r.Kind != "prober" || !r.Disagrees || a.Status != "unhealthy"):
				return false
			}
		}
		return true
	})
	res := <-done
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, out.String())
	}
	s := res.sum
	t.Logf("%s\n%+v", out.String(), s)

	// The defaults.
	if n := s.sent[0][s.broken]; n > 1 {
		t.Errorf("%s sent %d requests to the backend it holds unhealthy, want at most the one in flight", s.broken, n)
	}
	if r := s.roles[0][s.broken]; s.outvoted == 0 || !r.Outvoted || r.Kind != fleet.RoleProber || r.Verdict != health.Healthy {
		t.Errorf("%s: Stats.Outvoted %d, role %+v; want outvoted, a prober, the fleet's verdict healthy", s.broken, s.outvoted, r)
	}
	if len(s.roles[0]) != 5 || s.reported != 4 {
		t.Errorf("%d roles, %d other members report %s; want 5, 4", len(s.roles[0]), s.reported, s.broken)
	}
	for id, r := range s.roles[0] {
		if id != s.broken && (s.sent[0][id] == 0 || r.Verdict != health.Healthy) {
			t.Errorf("%s sent %d requests to the backend, the fleet's verdict %v; want some, healthy", id, s.sent[0][id], r.Verdict)
		}
	}
	// QuorumAny.
	applying := 0
	for id, r := range s.roles[1] {
		if r.Kind != fleet.RoleApplying {
			continue
		}
		applying++
		if r.Verdict != health.Unhealthy || r.From != s.broken || s.sent[1][id] >= s.sent[0][id] {
			t.Errorf("with QuorumAny %s applies %+v and sent %d requests (%d with the defaults); want %s's failure, fewer",
				id, r, s.sent[1][id], s.sent[0][id], s.broken)
		}
	}
	if applying != 5-fleet.DefaultProbers {
		t.Errorf("with QuorumAny %d members apply the fleet's verdict, want %d", applying, 5-fleet.DefaultProbers)
	}
	if !s.behaved() {
		t.Error("the summary says the fleet did not behave")
	}

	ls := parseLines(t, out.String())
	for _, want := range []struct{ who, text string }{
		{"", "sharing: probes per backend per interval, counted at the backends"},
		{s.broken, "127.0.0.12 healthy -> unhealthy: no route to host"},
		{s.broken, "holds 127.0.0.12 unhealthy by its own probes, and is outvoted"},
		{"", "4 of the 4 other members report " + s.broken},
		{"", "summary: requests to 127.0.0.12"},
	} {
		if !said(ls, want.who, want.text) {
			t.Errorf("%q never said %q", want.who, want.text)
		}
	}
	if last := ls[len(ls)-1]; last.OK == nil || !*last.OK {
		t.Errorf("the last line is not a success: %+v", last)
	}
}
