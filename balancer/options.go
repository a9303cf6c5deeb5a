package balancer

import (
	"math"
	"time"
)

// Policy selects how a Balancer picks among its candidate targets.
type Policy int

const (
	// RoundRobin spreads picks evenly (the default).
	RoundRobin Policy = iota
	// WeightedRoundRobin gives shares proportional to SRV weights along a
	// smooth schedule.
	WeightedRoundRobin
	// LeastRequest picks the less loaded of two random targets.
	LeastRequest
	// ConsistentHash maps keys given to PickKey onto a hash ring.
	ConsistentHash
)

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case WeightedRoundRobin:
		return "weighted-round-robin"
	case LeastRequest:
		return "least-request"
	case ConsistentHash:
		return "consistent-hash"
	}
	return "unknown"
}

// Clock tells the time; WithClock injects one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures a Balancer.
type Option func(*Balancer)

// WithPolicy selects the policy; an unknown value keeps RoundRobin.
func WithPolicy(p Policy) Option {
	return func(b *Balancer) {
		if p >= RoundRobin && p <= ConsistentHash {
			b.policy = p
		}
	}
}

// WithPanicThreshold turns the panic threshold on: when no priority level has
// a healthy fraction of at least f, picks go to all targets of the best level.
// f is clamped to [0, 1]; 0 (the default) turns it off.
func WithPanicThreshold(f float64) Option {
	return func(b *Balancer) {
		if math.IsNaN(f) || f <= 0 {
			b.panicPPM = 0
			return
		}
		b.panicPPM = int64(math.Round(min(f, 1) * ppm))
	}
}

// WithSlowStart makes a target that was added or turned healthy ramp its share
// up over window; 0 or less (the default) turns slow start off.
func WithSlowStart(window time.Duration) Option {
	return func(b *Balancer) { b.slowStart = max(window, 0) }
}

// WithClock sets the clock used by slow start; nil keeps the real clock.
func WithClock(c Clock) Option {
	return func(b *Balancer) {
		if c != nil {
			b.clock = c
		}
	}
}

// ppm is the fixed-point scale of the panic threshold, so that a fraction
// exactly at the threshold compares equal.
const ppm = 1_000_000
