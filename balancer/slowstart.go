package balancer

import (
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// minRamp is the share, relative to a full one, with which a target starts its
// slow-start window.
const minRamp = 0.1

// rampSteps is how many times per window the ramping shares are recomputed.
const rampSteps = 20

// ramp records when each healthy target arrived and, when candidates are
// still inside their window, sets their acceptance so that a target's share
// is proportional to max(minRamp, elapsed/window); b.mu is held.
func (b *Balancer) ramp(s *snapshot, now time.Time, first bool) {
	since := make(map[resolver.Key]time.Time, len(s.healthy))
	for _, a := range s.healthy {
		k := a.Key()
		t, ok := b.since[k]
		if !ok && !first {
			t = now // arrived since the previous build; zero: established
		}
		since[k] = t
	}
	b.since = since
	ramping := false
	for li := range s.levels {
		lv := &s.levels[li]
		if !lv.panicking && lv.ring == nil {
			ramping = b.rampLevel(lv, since, now) || ramping
		}
	}
	if ramping {
		s.refreshAt = now.Add(max(b.slowStart/rampSteps, time.Millisecond)).UnixNano()
	}
}

// rampLevel sets the acceptance of a level's candidates that are still
// inside their window and reports whether there is one; b.mu is held.
func (b *Balancer) rampLevel(lv *level, since map[resolver.Key]time.Time, now time.Time) bool {
	var f []float64
	fmax := 0.0
	for i, a := range lv.addrs {
		x := 1.0
		if t := since[a.Key()]; !t.IsZero() {
			if el := now.Sub(t); el < b.slowStart {
				x = max(minRamp, float64(el)/float64(b.slowStart))
				if f == nil {
					f = make([]float64, len(lv.addrs))
					for j := range i {
						f[j] = 1
					}
				}
			}
		}
		if f != nil {
			f[i] = x
		}
		fmax = max(fmax, x)
	}
	if f == nil {
		return false
	}
	lv.accept = make([]uint64, len(f))
	for i, x := range f {
		if x >= fmax {
			lv.accept[i] = fullAccept
		} else {
			lv.accept[i] = uint64(x / fmax * fullAccept)
		}
	}
	return true
}
