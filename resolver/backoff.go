package resolver

import (
	"math/rand/v2"
	"time"
)

// Defaults of the retry backoff after a failed resolution.
const (
	defaultBackoffBase = time.Second
	defaultBackoffMax  = 30 * time.Second
	backoffJitter      = 0.2 // ±20%
	ttlJitter          = 0.1 // refresh up to 10% early, never before MinTTL
)

// backoff computes capped exponential retry delays with jitter.
type backoff struct {
	base, max time.Duration
}

// delay returns the wait before retry number n (1 for the first retry):
// base·2^(n-1), capped at max, then moved by up to ±20% at random.
func (b backoff) delay(n int) time.Duration {
	d := b.base
	for i := 1; i < n && d < b.max; i++ { // at most ~log2(max/base) rounds
		d *= 2
	}
	d = min(d, b.max)
	f := 1 + backoffJitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// refreshDelay clamps ttl to [lo, hi] and moves it up to 10% earlier at
// random, so that many sources do not query in lockstep, but never below
// lo: the jitter never makes a source query more often than MinTTL allows
// (a TTL at or below MinTTL gets none).
func refreshDelay(ttl, lo, hi time.Duration) time.Duration {
	d := min(max(ttl, lo), hi)
	return max(d-time.Duration(rand.Float64()*ttlJitter*float64(d)), lo)
}
