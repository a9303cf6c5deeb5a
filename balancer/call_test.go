package balancer

import (
	"testing"

	"github.com/vigil-go/vigil/health"
)

func TestCallReportsOutcome(t *testing.T) {
	tests := []struct {
		outcome Outcome
		want    health.Status
	}{
		{ConnFailure, health.Unhealthy},
		{Timeout, health.Unhealthy},
		{HTTPStatus(503), health.Unhealthy},
		{HTTPStatus(200), health.Healthy},
		{HTTPStatus(404), health.Healthy}, // in neither passive list
		{Success, health.Healthy},
		{Ignore, health.Healthy},
	}
	for _, tt := range tests {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			as := addrs(2)
			c := newChecker(t, as...)
			b := New(c)
			call, err := b.PickCall()
			if err != nil {
				t.Fatal(err)
			}
			call.Done(tt.outcome)
			if got := c.Status(call.Address); got != tt.want {
				t.Fatalf("after %v: %v, want %v", tt.outcome, got, tt.want)
			}
			if tt.want == health.Unhealthy {
				for range 200 {
					a, err := b.Pick()
					if err != nil {
						t.Fatal(err)
					}
					if a == call.Address {
						t.Fatal("picked the target its own outcome made unhealthy")
					}
				}
			}
		})
	}
}
