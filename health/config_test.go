package health

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// Bad configuration returns an error naming the field, from NewChecker and
// from Update, and never panics.
func TestBadConfig(t *testing.T) {
	ok := func() Config { return Config{Name: "up9"} }
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"Name", func(c *Config) { c.Name = "" }},
		{"Name", func(c *Config) { c.Name = "  " }},
		{"Active.Type", func(c *Config) { c.Active.Type = ProbeType(7) }},
		{"Active.Path", func(c *Config) { c.Active.Path = "health" }},
		{"Active.Path", func(c *Config) { c.Active.Path = "/a b" }},
		{"Active.Host", func(c *Config) { c.Active.Host = "a/b" }},
		{"Active.Timeout", func(c *Config) { c.Active.Timeout = -time.Second }},
		{"Active.Healthy.Successes", func(c *Config) { c.Active.Healthy.Successes = -1 }},
		{"Active.Unhealthy.HTTPFailures", func(c *Config) { c.Active.Unhealthy.HTTPFailures = -1 }},
		{"Active.Unhealthy.TCPFailures", func(c *Config) { c.Active.Unhealthy.TCPFailures = -2 }},
		{"Active.Unhealthy.Timeouts", func(c *Config) { c.Active.Unhealthy.Timeouts = -3 }},
		{"Passive.Healthy.Successes", func(c *Config) { c.Passive.Healthy.Successes = -1 }},
		{"Passive.Unhealthy.HTTPFailures", func(c *Config) { c.Passive.Unhealthy.HTTPFailures = -1 }},
		{"Passive.Unhealthy.TCPFailures", func(c *Config) { c.Passive.Unhealthy.TCPFailures = -1 }},
		{"Passive.Unhealthy.Timeouts", func(c *Config) { c.Passive.Unhealthy.Timeouts = -1 }},
		{"Active.Healthy.HTTPStatuses", func(c *Config) { c.Active.Healthy.HTTPStatuses = []int{200, 42} }},
		{"Active.Unhealthy.HTTPStatuses", func(c *Config) { c.Active.Unhealthy.HTTPStatuses = []int{600} }},
		{"Active.Unhealthy.HTTPStatuses", func(c *Config) { c.Active.Unhealthy.HTTPStatuses = []int{200} }},
		{"Passive.Healthy.HTTPStatuses", func(c *Config) { c.Passive.Healthy.HTTPStatuses = []int{99} }},
		{"Passive.Unhealthy.HTTPStatuses", func(c *Config) { c.Passive.Unhealthy.HTTPStatuses = []int{-1} }},
		{"Initial", func(c *Config) { c.Initial = Status(9) }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			cfg := ok()
			tc.edit(&cfg)
			check := func(err error) {
				t.Helper()
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("error %v, want one naming %s", err, tc.field)
				}
				if !strings.HasPrefix(err.Error(), "health: invalid config: "+tc.field+": ") {
					t.Fatalf("message %q", err)
				}
			}
			c, err := NewChecker(cfg, nil)
			if c != nil {
				t.Fatal("a checker for a bad configuration")
			}
			check(err)
			good, err := NewChecker(ok(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.field != "Name" {
				check(good.Update(cfg))
			}
			if got := good.Config(); got.Active.Path != "/" || got.Active.Timeout != DefaultTimeout {
				t.Fatalf("a failed Update changed the configuration: %+v", got.Active)
			}
		})
	}
	t.Run("Name cannot change", func(t *testing.T) {
		c, err := NewChecker(ok(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var ce *ConfigError
		if err := c.Update(Config{Name: "other"}); !errors.As(err, &ce) || ce.Field != "Name" {
			t.Fatalf("renaming: %v", err)
		}
	})
}

// Zero values mean the documented defaults (lua-resty-healthcheck's).
func TestDefaults(t *testing.T) {
	c, err := NewChecker(Config{Name: "d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	a, p := got.Active, got.Passive
	checks := []struct {
		name      string
		got, want any
	}{
		{"Path", a.Path, "/"},
		{"Timeout", a.Timeout, time.Second},
		{"Healthy.Interval", a.Healthy.Interval, time.Second},
		{"Unhealthy.Interval", a.Unhealthy.Interval, time.Second},
		{"active thresholds", activeThresholds(got), thresholds{2, 5, 2, 3}},
		{"passive thresholds", passiveThresholds(got), thresholds{5, 5, 2, 7}},
		{"active healthy statuses", len(a.Healthy.HTTPStatuses), 2},
		{"active unhealthy statuses", len(a.Unhealthy.HTTPStatuses), 8},
		{"passive unhealthy statuses", len(p.Unhealthy.HTTPStatuses), 3},
		{"Memory", got.Memory, 1024},
		{"Initial", got.Initial, Healthy},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestRunTwice(t *testing.T) {
	c := newChecker(t, passiveOnly("twice"), nil, nil)
	start(t, c)
	testutil.Eventually(t, time.Second, "Run to start", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.running
	})
	if err := c.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

// Zero is an explicit 0 in the fields where Envoy and gRFC A50 give 0 a
// meaning; it survives normalizing, so Config and Update round-trip, while
// 0 still means the default and other negative values are refused.
func TestZero(t *testing.T) {
	on := func(o Outlier) Config {
		o.Interval = time.Second
		return Config{Name: "zero", Passive: Passive{Outlier: o}}
	}
	c, err := NewChecker(on(Outlier{MaxEjectionPercent: Zero,
		SuccessRate:       &SuccessRate{EnforcementPercentage: Zero, StdevFactor: Zero},
		FailurePercentage: &FailurePercentage{EnforcementPercentage: Zero, Threshold: Zero}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Config().Passive.Outlier
	if o.MaxEjectionPercent != Zero || o.SuccessRate.EnforcementPercentage != Zero || o.SuccessRate.StdevFactor != Zero ||
		o.FailurePercentage.EnforcementPercentage != Zero || o.FailurePercentage.Threshold != Zero {
		t.Fatalf("normalized %+v %+v %+v", o, *o.SuccessRate, *o.FailurePercentage)
	}
	if err := c.Update(c.Config()); err != nil {
		t.Fatalf("the normalized configuration does not round-trip: %v", err)
	}
	if got := c.Config().Passive.Outlier; got.MaxEjectionPercent != Zero || got.FailurePercentage.Threshold != Zero {
		t.Fatalf("after Update %+v", got)
	}
	d, err := NewChecker(on(Outlier{SuccessRate: &SuccessRate{}, FailurePercentage: &FailurePercentage{}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := d.Config().Passive.Outlier; o.MaxEjectionPercent != DefaultMaxEjectionPercent ||
		o.SuccessRate.EnforcementPercentage != 100 || o.FailurePercentage.Threshold != 85 {
		t.Fatalf("0 no longer means the default: %+v", o)
	}
	for field, o := range map[string]Outlier{
		"Passive.Outlier.MaxEjectionPercent":                      {MaxEjectionPercent: -2},
		"Passive.Outlier.SuccessRate.EnforcementPercentage":       {SuccessRate: &SuccessRate{EnforcementPercentage: -3}},
		"Passive.Outlier.SuccessRate.StdevFactor":                 {SuccessRate: &SuccessRate{StdevFactor: -0.5}},
		"Passive.Outlier.FailurePercentage.Threshold":             {FailurePercentage: &FailurePercentage{Threshold: 101}},
		"Passive.Outlier.FailurePercentage.EnforcementPercentage": {FailurePercentage: &FailurePercentage{EnforcementPercentage: -100}},
	} {
		var ce *ConfigError
		if _, err := NewChecker(on(o), nil); !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// A ConfigError reads "health: invalid config: Field: Reason", matches
// ErrInvalidConfig, and wraps the cause when another package refused the
// value (the resolver, for a name).
func TestConfigErrorShape(t *testing.T) {
	_, err := NewChecker(Config{Name: "bad name!"}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Name" || ce.Reason == "" || ce.Err == nil {
		t.Fatalf("error %#v", err)
	}
	if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, resolver.ErrInvalidConfig) {
		t.Fatalf("%v does not match both packages' ErrInvalidConfig", err)
	}
	if want := "health: invalid config: Name: " + ce.Reason; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if ErrInvalidConfig.Error() != "health: invalid config" {
		t.Fatalf("ErrInvalidConfig reads %q", ErrInvalidConfig)
	}
}
