package vigil

import (
	"errors"
	"slices"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Config describes one upstream: the DNS name it follows and how its
// addresses are checked and picked. Zero values mean the documented
// defaults of each part.
type Config struct {
	Name string // the DNS name; the upstream's name in every package and topic (normalized)
	Port uint16 // the port of every address for A/AAAA answers; required for them, unused for SRV
	// Type is what is resolved: resolver.IP (A and AAAA of Name, queried at
	// once: the default, also for the zero value resolver.A),
	// resolver.AAAA or resolver.SRV. For A records only, leave Type alone
	// and set Resolver.Family to resolver.IPv4Only.
	Type     resolver.RecordType
	Resolver resolver.Config // everything else about DNS; Name, Type and Port come from above
	Health   health.Config   // probes, verdicts, memory; Name comes from above
	// Balancer configures the upstream's balancer.Balancer: its policy and
	// knobs (balancer.WithConfig, or WithPolicy and the other options of
	// one Config field). A value the balancer refuses is a *ConfigError
	// whose Field is the balancer.Config field under "Balancer."
	// ("Balancer.PanicThreshold").
	Balancer []balancer.Option
}

// Clone returns cfg with its slices, maps and pointers copied, so that a
// caller may go on changing its own (probers and balancer options, which
// are the caller's values, are shared).
func (cfg Config) Clone() Config {
	cfg.Resolver.Servers = slices.Clone(cfg.Resolver.Servers)
	cfg.Health = cfg.Health.Clone()
	cfg.Balancer = slices.Clone(cfg.Balancer)
	return cfg
}

// CheckTemplate checks t as a template, a Config whose Name (and, for
// A/AAAA, Port) each use fills in, with the options each use will get. Its
// errors are *ConfigErrors whose Field is under "Template.".
func CheckTemplate(t Config, opts ...Option) error {
	return checkTemplate(t, buildOptions(opts))
}

func checkTemplate(t Config, o options) error {
	t.Name = "template.invalid"
	if t.Port == 0 && t.Type != resolver.SRV {
		t.Port = 80 // any port: each use gives its own
	}
	if _, err := newUpstream(t, o); err != nil {
		return within("Template", err)
	}
	return nil
}

// recordType returns the record type cfg resolves.
func (cfg Config) recordType() resolver.RecordType {
	if cfg.Type == resolver.A {
		return resolver.IP
	}
	return cfg.Type
}

// ErrInvalidConfig is matched (errors.Is) by every configuration error of
// New and NewClient.
var ErrInvalidConfig = errors.New("vigil: invalid configuration")

// ConfigError reports an invalid configuration field. Field is the path of
// the field from the Config given ("Name", "Port", "Resolver.MinTTL",
// "Health.Active.Path", "Balancer.PanicThreshold"), prefixed by where that
// Config sits in a ClientConfig ("Upstreams[2].Port",
// "Template.Health.Memory"). It wraps
// the error of the part that refused the value, so errors.Is also matches
// resolver.ErrInvalidConfig, health.ErrInvalidConfig or
// balancer.ErrInvalidConfig.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // the part's own error; may be nil
}

// Error implements error.
func (e *ConfigError) Error() string { return "vigil: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the part's error.
func (e *ConfigError) Unwrap() error { return e.Err }

// within returns err with its field prefixed by where its Config sits.
func within(prefix string, err error) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		c := *ce
		c.Field = prefix + "." + c.Field
		return &c
	}
	return err
}

// configErr turns an error of a part into a *ConfigError whose field is
// the path from Config: resolver fields under "Resolver." (but Name, Type
// and Port, which Config sets), health fields under "Health.", balancer
// fields (set by the options of Config.Balancer) under "Balancer.".
func configErr(err error) error {
	var rc *resolver.ConfigError
	if errors.As(err, &rc) {
		field := rc.Field
		switch field {
		case "Name", "Type", "Port":
		default:
			field = "Resolver." + field
		}
		return &ConfigError{Field: field, Reason: rc.Reason, Err: err}
	}
	var bc *balancer.ConfigError
	if errors.As(err, &bc) {
		return &ConfigError{Field: "Balancer." + bc.Field, Reason: bc.Reason, Err: err}
	}
	var hc *health.ConfigError
	if errors.As(err, &hc) {
		field := "Health." + hc.Field
		if hc.Field == "Name" {
			field = "Name"
		}
		return &ConfigError{Field: field, Reason: hc.Problem, Err: err}
	}
	return err
}
