package balancer

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config is how a Balancer picks. The zero Config is round robin over the
// best priority level with a healthy target, without slow start. Every
// field's zero value is its default; a value outside its range is a
// *ConfigError, never replaced by another.
type Config struct {
	// Policy picks among the candidates of a priority level; the zero
	// value is RoundRobin.
	Policy Policy
	// PanicThreshold, when above 0, turns on Envoy's priority levels with
	// a panic threshold: a level whose healthy fraction is below it while
	// the levels together lack healthy targets spreads its share of the
	// picks over all its targets, healthy or not (see the package
	// documentation). It lies in [0, 1]; 0 (the default) turns panic off.
	PanicThreshold float64
	// OverprovisioningFactor turns on Envoy's priority levels: a level
	// whose healthy fraction times the factor is at least 1 counts as fully
	// available, and picks spill over to worse levels as the product drops
	// below 1. It lies in [0.01, 1e6]; 0 (the default) means 1.4 when
	// PanicThreshold is set, and otherwise the strict order of RFC 2782
	// (every pick to the best level that has a healthy target).
	OverprovisioningFactor float64
	// SlowStart is the window over which a target that was added, or
	// turned healthy, ramps its share up from 10% to a full one; 0 (the
	// default) turns slow start off. It must not be negative.
	SlowStart time.Duration
	// EWMADecay is PeakEWMA's time constant: after that long without a
	// response a target's latency estimate is down to 1/e of what it was.
	// 0 means 10s (Finagle's and linkerd's); it must not be negative.
	EWMADecay time.Duration
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("balancer: invalid config")

// ConfigError reports an invalid Config field, or an invalid argument of
// New ("Checker").
type ConfigError struct {
	Field  string // the Config field, for example "PanicThreshold"
	Reason string
	Err    error // the cause, if any; may be nil
}

// Error implements error.
func (e *ConfigError) Error() string { return "balancer: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// validate returns a *ConfigError for the first field out of its range.
func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch f := c.OverprovisioningFactor; {
	case c.Policy < 0 || int(c.Policy) >= len(behaviours):
		return bad("Policy", "unknown policy %d", int(c.Policy))
	case math.IsNaN(c.PanicThreshold) || c.PanicThreshold < 0 || c.PanicThreshold > 1:
		return bad("PanicThreshold", "%v is outside [0, 1]", c.PanicThreshold)
	case math.IsNaN(f) || f < 0 || f > maxOverprovision:
		return bad("OverprovisioningFactor", "%v is outside [0.01, 1e6] (0 for the default)", f)
	case f > 0 && f < minOverprovision:
		return bad("OverprovisioningFactor", "%v is below 0.01", f)
	case c.SlowStart < 0:
		return bad("SlowStart", "negative window %v", c.SlowStart)
	case c.EWMADecay < 0:
		return bad("EWMADecay", "negative time constant %v", c.EWMADecay)
	}
	return nil
}

// overprovision returns the overprovisioning factor in percent, 0 for the
// strict order of levels.
func (c Config) overprovision() int {
	switch {
	case c.OverprovisioningFactor > 0:
		return max(1, int(math.Round(c.OverprovisioningFactor*100)))
	case c.PanicThreshold > 0:
		return defaultOverprovision
	}
	return 0
}

// panicPPM returns the panic threshold in parts per million.
func (c Config) panicPPM() int64 { return int64(math.Round(c.PanicThreshold * ppm)) }

// decay returns PeakEWMA's time constant.
func (c Config) decay() time.Duration {
	if c.EWMADecay == 0 {
		return defaultDecay
	}
	return c.EWMADecay
}

// The range of the overprovisioning factor.
const (
	minOverprovision = 0.01
	maxOverprovision = 1e6
)

// ppm is the fixed-point scale of the panic threshold, so that a fraction
// exactly at the threshold compares equal.
const ppm = 1_000_000

// defaultOverprovision is Envoy's overprovisioning factor, in percent.
const defaultOverprovision = 140

// defaultDecay is PeakEWMA's time constant (Finagle's and linkerd's).
const defaultDecay = 10 * time.Second
