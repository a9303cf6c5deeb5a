package balancer

import (
	"math"
	"time"
)

// Policy selects how a Balancer picks among the candidate targets of a
// priority level.
type Policy int

const (
	// RoundRobin (the default) rotates over the candidates in canonical
	// order, one shared counter per level; when their SRV weights differ it
	// follows the smooth weighted schedule instead.
	RoundRobin Policy = iota
	// LeastRequest picks the one of two random candidates with fewer
	// requests in flight.
	LeastRequest
	// ConsistentHash maps keys given to PickKey onto a hash ring.
	ConsistentHash
	// Random draws each pick from the calling thread's generator, in
	// proportion to SRV weights; it shares no counter between cores.
	Random
	// PeakEWMA picks the one of two random candidates with the lower cost:
	// the peak EWMA of its response times times its requests in flight
	// plus one.
	PeakEWMA
)

// WeightedRoundRobin is RoundRobin, which honours SRV weights whenever they
// differ. It is kept as a name for configurations that spell it out.
const WeightedRoundRobin = RoundRobin

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case LeastRequest:
		return "least-request"
	case ConsistentHash:
		return "consistent-hash"
	case Random:
		return "random"
	case PeakEWMA:
		return "peak-ewma"
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
		if p >= RoundRobin && p <= PeakEWMA {
			b.policy = p
		}
	}
}

// WithPanicThreshold turns on Envoy's priority levels with a panic threshold
// of f: each level takes a share of the picks from its health, and a level
// whose healthy fraction is below f while the levels together are short of
// healthy targets spreads its share over all its targets, healthy or not
// (see the package documentation). The overprovisioning factor is 1.4
// unless WithOverprovisioningFactor sets another. f is clamped to [0, 1];
// 0 (the default) turns the panic threshold off.
func WithPanicThreshold(f float64) Option {
	return func(b *Balancer) {
		if math.IsNaN(f) || f <= 0 {
			b.panicPPM = 0
			return
		}
		b.panicPPM = int64(math.Round(min(f, 1) * ppm))
	}
}

// WithOverprovisioningFactor turns on Envoy's priority levels with the
// overprovisioning factor f: a level whose healthy fraction times f is at
// least 1 is fully available, and traffic spills over to worse levels as
// that product drops below 1. Without WithPanicThreshold no level panics.
// f must be positive; 0, a negative f or NaN keeps the default, 1.4.
func WithOverprovisioningFactor(f float64) Option {
	return func(b *Balancer) {
		b.overprovision = defaultOverprovision
		if !math.IsNaN(f) && f > 0 {
			b.overprovision = max(1, int(math.Round(min(f, 1e6)*100)))
		}
	}
}

// WithEWMADecay sets the time constant with which PeakEWMA's latency
// estimate decays: after d without a response a target's estimate is down
// to 1/e of what it was. 0 or less keeps the default, 10s.
func WithEWMADecay(d time.Duration) Option {
	return func(b *Balancer) {
		b.decay = defaultDecay
		if d > 0 {
			b.decay = d
		}
	}
}

// WithSlowStart makes a target that was added or turned healthy ramp its share
// up over window; 0 or less (the default) turns slow start off.
func WithSlowStart(window time.Duration) Option {
	return func(b *Balancer) { b.slowStart = max(window, 0) }
}

// WithClock sets the clock used by slow start and PeakEWMA; nil keeps the
// real clock.
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

// defaultOverprovision is Envoy's overprovisioning factor, in percent.
const defaultOverprovision = 140

// defaultDecay is PeakEWMA's time constant (Finagle's and linkerd's).
const defaultDecay = 10 * time.Second
