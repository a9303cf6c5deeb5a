package balancer

import (
	"errors"
	"math"
	"testing"
	"time"
)

// An impossible setting is a *ConfigError naming the field, from
// NewWithConfig, and from every pick of a balancer New made: never a
// panic, never another value in its place.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		opts  []Option
		field string
	}{
		{"unknown policy", Config{Policy: Policy(99)}, nil, "Policy"},
		{"negative policy", Config{}, []Option{WithPolicy(-1)}, "Policy"},
		{"panic threshold above 1", Config{PanicThreshold: 1.5}, nil, "PanicThreshold"},
		{"negative panic threshold", Config{}, []Option{WithPanicThreshold(-0.1)}, "PanicThreshold"},
		{"NaN panic threshold", Config{PanicThreshold: math.NaN()}, nil, "PanicThreshold"},
		{"negative factor", Config{OverprovisioningFactor: -1}, nil, "OverprovisioningFactor"},
		{"factor too small", Config{}, []Option{WithOverprovisioningFactor(0.001)}, "OverprovisioningFactor"},
		{"infinite factor", Config{OverprovisioningFactor: math.Inf(1)}, nil, "OverprovisioningFactor"},
		{"negative slow start", Config{}, []Option{WithSlowStart(-time.Second)}, "SlowStart"},
		{"negative decay", Config{EWMADecay: -time.Second}, nil, "EWMADecay"},
		{"WithConfig replaces a valid option", Config{}, []Option{WithSlowStart(time.Second), WithConfig(Config{EWMADecay: -1})}, "EWMADecay"},
	}
	c := newChecker(t, addrs(2)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewWithConfig(c, tt.cfg, tt.opts...)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) || b != nil {
				t.Fatalf("NewWithConfig: %v, %v; want a *ConfigError for %s", b, err, tt.field)
			}
			if want := "balancer: invalid config: " + ce.Field + ": " + ce.Reason; err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}

			b = New(c, append([]Option{WithConfig(tt.cfg)}, tt.opts...)...)
			if !errors.Is(b.Err(), ErrInvalidConfig) {
				t.Fatalf("New: Err() = %v", b.Err())
			}
			check := func(what string, err error) {
				t.Helper()
				if !errors.As(err, &ce) || ce.Field != tt.field || errors.Is(err, ErrNoHealthy) {
					t.Errorf("%s: %v, want the *ConfigError for %s", what, err, tt.field)
				}
			}
			_, err = b.Pick()
			check("Pick", err)
			_, err = b.PickKey("k")
			check("PickKey", err)
			_, err = b.PickCall()
			check("PickCall", err)
			_, err = b.PickKeyCall("k")
			check("PickKeyCall", err)
			_, err = b.PickCallExcept(nil)
			check("PickCallExcept", err)
			if b.Candidate(addr(1)) || b.Loads() != nil {
				t.Error("a balancer that failed to configure has candidates or loads")
			}
		})
	}

	// A nil checker too, without a panic.
	if _, err := NewWithConfig(nil, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewWithConfig(nil): %v", err)
	}
	if _, err := New(nil).Pick(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(nil).Pick: %v", err)
	}
}

// Options set Config fields in order; zero values are the defaults.
func TestOptionsSetConfig(t *testing.T) {
	c := newChecker(t, addrs(2)...)
	b, err := NewWithConfig(c, Config{Policy: Random, SlowStart: time.Second},
		WithPolicy(PeakEWMA), WithOverprovisioningFactor(0), WithEWMADecay(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Policy: PeakEWMA, SlowStart: time.Second, OverprovisioningFactor: 1.4, EWMADecay: time.Minute}
	if got := b.Config(); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
	if b.Policy() != PeakEWMA || b.tau != float64(time.Minute) {
		t.Errorf("policy %v, τ %v", b.Policy(), time.Duration(b.tau))
	}
	for _, tt := range []struct {
		cfg  Config
		want int // overprovisioning in percent; 0: strict order
	}{
		{Config{}, 0},
		{Config{PanicThreshold: 0.5}, defaultOverprovision},
		{Config{OverprovisioningFactor: 1}, 100},
		{Config{PanicThreshold: 0.5, OverprovisioningFactor: 2}, 200},
	} {
		if got := tt.cfg.overprovision(); got != tt.want {
			t.Errorf("%+v: overprovisioning %d%%, want %d%%", tt.cfg, got, tt.want)
		}
	}
	if got := (Config{}).decay(); got != defaultDecay {
		t.Errorf("default decay %v", got)
	}
	if s := Policy(42).String(); s != "unknown(42)" {
		t.Errorf("Policy(42).String() = %q", s)
	}
}
