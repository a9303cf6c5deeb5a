package balancer

import (
	"math/rand/v2"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// minRamp is the share, relative to a full one, with which a target starts its
// slow-start window.
const minRamp = 0.1

// rampSteps is how many times per window the ramping shares are recomputed.
const rampSteps = 20

// ramp records when each healthy target arrived and, when candidates are
// still inside their window, wraps their level's picker so that a target's
// share is proportional to max(minRamp, elapsed/window); b.mu is held.
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
		if !lv.panicking && !b.pol.keyed {
			ramping = b.rampLevel(lv, since, now) || ramping
		}
	}
	if ramping {
		s.refreshAt = now.Add(max(b.cfg.SlowStart/rampSteps, time.Millisecond)).UnixNano()
	}
}

// rampLevel wraps the picker of a level that has candidates still inside
// their window in one that refuses them in proportion, and reports whether
// there is one; b.mu is held.
func (b *Balancer) rampLevel(lv *level, since map[resolver.Key]time.Time, now time.Time) bool {
	var f []float64
	fmax := 0.0
	for i, a := range lv.addrs {
		x := 1.0
		if t := since[a.Key()]; !t.IsZero() {
			if el := now.Sub(t); el < b.cfg.SlowStart {
				x = max(minRamp, float64(el)/float64(b.cfg.SlowStart))
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
	accept := make([]uint64, len(f))
	for i, x := range f {
		if x >= fmax {
			accept[i] = fullAccept
		} else {
			accept[i] = uint64(x / fmax * fullAccept)
		}
	}
	lv.picker = &ramped{picker: lv.base, accept: accept}
	return true
}

// ramped is a level's picker while some of its candidates ramp up: a pick
// of a ramping candidate is accepted with its acceptance, else drawn again
// at random in the policy's proportions (so round robin is no longer an
// exact rotation meanwhile), at most maxRedraws times.
type ramped struct {
	picker
	accept []uint64 // acceptance threshold of each candidate out of fullAccept
}

func (r *ramped) pick(sh *shards) int {
	i := r.picker.pick(sh)
	for range maxRedraws {
		if acc := r.accept[i]; acc == fullAccept || uint64(rand.Uint32()) < acc {
			break
		}
		i = r.picker.draw()
	}
	return i
}

// fullAccept accepts every draw.
const fullAccept = 1 << 32

// maxRedraws bounds how often slow start redraws a ramping target.
const maxRedraws = 16
