package balancer

import (
	"testing"
)

func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		total     int
		healthy   int
		panicking bool
	}{
		{"below", 0.5, 10, 4, true},
		{"at", 0.5, 10, 5, false},
		{"above", 0.5, 10, 6, false},
		{"at, inexact in binary", 0.3, 10, 3, false},
		{"below, inexact in binary", 0.3, 10, 2, true},
		{"none healthy", 0.5, 10, 0, true},
		{"off", 0, 10, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := addrs(tt.total)
			c := newChecker(t, as...)
			b := New(c, WithPanicThreshold(tt.threshold))
			setUnhealthy(t, c, as[tt.healthy:]...)
			got := counts(t, b, 5000)
			if tt.panicking {
				// Every target, healthy or not, takes picks.
				for _, a := range as {
					if got[a.Key()] == 0 {
						t.Errorf("in panic, %v never picked", a)
					}
				}
				return
			}
			for _, a := range as[tt.healthy:] {
				if n := got[a.Key()]; n > 0 {
					t.Errorf("not in panic, unhealthy %v picked %d times", a, n)
				}
			}
			for _, a := range as[:tt.healthy] {
				if got[a.Key()] == 0 {
					t.Errorf("healthy %v never picked", a)
				}
			}
		})
	}
}

// A level under the threshold passes to the next level that reaches it; when
// none does, the panic picks among the best level only.
func TestPanicThresholdPriorities(t *testing.T) {
	as := addrs(8)
	for i := 4; i < 8; i++ {
		as[i].Priority = 1
	}
	c := newChecker(t, as...)
	b := New(c, WithPanicThreshold(0.5))
	setUnhealthy(t, c, as[0], as[1], as[2]) // level 0: 1 of 4 healthy
	got := counts(t, b, 4000)
	for _, a := range as[:4] {
		if got[a.Key()] > 0 {
			t.Errorf("level 0 is below the threshold, yet %v was picked", a)
		}
	}
	setUnhealthy(t, c, as[4], as[5], as[6]) // level 1: 1 of 4 healthy too
	got = counts(t, b, 4000)
	for _, a := range as {
		n := got[a.Key()]
		if a.Priority == 0 && n == 0 {
			t.Errorf("in panic, %v of the best level never picked", a)
		}
		if a.Priority == 1 && n > 0 {
			t.Errorf("in panic, %v of a worse level picked %d times", a, n)
		}
	}
}
