package resolver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults of Backoff's zero values, and of the refresh jitter.
const (
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 30 * time.Second
	DefaultBackoffJitter  = 0.2 // ±20%
	ttlJitter             = 0.1 // refresh up to 10% early, never before MinTTL
)

// Backoff is the schedule of retries after failed resolutions: the first
// retry waits Initial, each further one twice as long as the one before, up
// to Max; each wait is then moved at random by up to ±Jitter of itself. The
// zero value means 1s doubling to 30s, ±20%.
type Backoff struct {
	Initial time.Duration // the wait before the first retry; default 1s
	Max     time.Duration // the longest wait, before the jitter; default 30s; not below Initial
	Jitter  float64       // the fraction of a wait added or taken at random; default 0.2; negative: none; below 1
}

// withDefaults returns b with its zero values replaced by the defaults.
func (b Backoff) withDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Jitter == 0 {
		b.Jitter = DefaultBackoffJitter
	}
	return b
}

// validate checks b, which has its defaults applied.
func (b Backoff) validate() error {
	switch {
	case b.Initial < 0:
		return &ConfigError{Field: "Backoff.Initial", Reason: "negative duration " + b.Initial.String()}
	case b.Max < 0:
		return &ConfigError{Field: "Backoff.Max", Reason: "negative duration " + b.Max.String()}
	case b.Initial > b.Max:
		return &ConfigError{Field: "Backoff.Initial", Reason: fmt.Sprintf("%v is greater than Backoff.Max %v", b.Initial, b.Max)}
	case math.IsNaN(b.Jitter) || b.Jitter >= 1:
		return &ConfigError{Field: "Backoff.Jitter", Reason: fmt.Sprintf("%v is not below 1", b.Jitter)}
	}
	return nil
}

// delay returns the wait before retry number n (1 for the first retry):
// Initial·2^(n-1), capped at Max, then moved by up to ±Jitter at random.
// b has its defaults applied.
func (b Backoff) delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ { // at most ~log2(Max/Initial) rounds
		if d > b.Max/2 {
			d = b.Max
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter <= 0 {
		return d
	}
	j := float64(d) * (1 + b.Jitter*(2*rand.Float64()-1))
	if j >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(j)
}

// refreshDelay clamps ttl to [lo, hi] and moves it up to 10% earlier at
// random, so that many sources do not query in lockstep, but never below
// lo: the jitter never makes a source query more often than MinTTL allows
// (a TTL at or below MinTTL gets none).
func refreshDelay(ttl, lo, hi time.Duration) time.Duration {
	d := min(max(ttl, lo), hi)
	return max(d-time.Duration(rand.Float64()*ttlJitter*float64(d)), lo)
}
