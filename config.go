package vigil

import (
	"errors"
	"reflect"
	"slices"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Config describes one upstream: the DNS name it follows and how its
// addresses are checked and picked. Zero values mean the documented
// defaults of each part, with one exception, the probe:
//
// What is probed: when Health.Active names no check (no Path, no Prober,
// and Type left at its zero value, health.HTTP), the upstream probes each
// address with a TCP connect, and the passive verdict judges the traffic's
// outcomes, so that no backend is held unhealthy for a route it never
// promised (GET / answering 404, say). Probing over HTTP needs a Path
// ("/healthz"); Type health.HTTPS without a Path probes "/"; Headers,
// ExpectBody or Host without a Path are an error, since a TCP connect would
// ignore them. A health.Checker made on its own keeps health's default,
// GET /.
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
	cfg.Resolver = cfg.Resolver.Clone()
	cfg.Health = cfg.Health.Clone()
	cfg.Balancer = slices.Clone(cfg.Balancer)
	return cfg
}

// CheckTemplate checks t as a template, a Config whose Name (and, for
// A/AAAA, Port) each use fills in, with the options each use will get. Its
// errors are *ConfigErrors whose Field is under "Template.".
func CheckTemplate(t Config, opts ...Option) error {
	return checkPartial("Template", t, buildOptions(opts))
}

// checkPartial checks t, a Config without its Name and Port (a template,
// or a client's defaults), with errors under prefix.
func checkPartial(prefix string, t Config, o options) error {
	t.Name = "template.invalid"
	if t.Port == 0 && t.Type != resolver.SRV {
		t.Port = 80 // any port: each use gives its own
	}
	if _, err := newUpstream(t, o); err != nil {
		return within(prefix, err)
	}
	return nil
}

// checkDefaults checks d as a ClientConfig's Defaults: values that no
// entry could make valid, and a Name or Port, which are each upstream's
// own. Probe settings that need a Path (Headers, ExpectBody) are fine
// there: each entry may give its Path.
func checkDefaults(d Config, o options) error {
	switch {
	case d.Name != "":
		return &ConfigError{Field: "Defaults.Name", Reason: "each upstream has its own name: Defaults must not set one"}
	case d.Port != 0:
		return &ConfigError{Field: "Defaults.Port",
			Reason: "each upstream has its own port (a template's comes from the request's URL): Defaults must not set one"}
	}
	if d.Health.Active.Path == "" {
		d.Health.Active.Path = "/"
	}
	return checkPartial("Defaults", d, o)
}

// withDefaults returns cfg with every field it leaves at its zero value
// taken from d: structs field by field; a slice or map that is empty, or a
// pointer, interface or other value that is zero, as one value. The result
// shares nothing with either (see Clone).
func withDefaults(cfg, d Config) Config {
	fill(reflect.ValueOf(&cfg).Elem(), reflect.ValueOf(d))
	return cfg.Clone()
}

// fill sets what dst leaves at its zero value to def's, recursing into
// structs whose fields are all exported (configuration, not opaque values).
func fill(dst, def reflect.Value) {
	switch dst.Kind() {
	case reflect.Struct:
		if !allExported(dst.Type()) {
			break
		}
		for i := range dst.NumField() {
			fill(dst.Field(i), def.Field(i))
		}
		return
	case reflect.Slice, reflect.Map:
		if dst.Len() == 0 {
			dst.Set(def)
		}
		return
	}
	if dst.IsZero() {
		dst.Set(def)
	}
}

func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

// defaultProbe returns a with the root package's default probe: a TCP
// connect when a names no check (see Config).
func defaultProbe(a health.Active) (health.Active, error) {
	if a.Prober != nil || a.Type != health.HTTP || a.Path != "" {
		return a, nil
	}
	var set string
	switch {
	case a.ExpectBody != "":
		set = "ExpectBody"
	case len(a.Headers) > 0:
		set = "Headers"
	case a.Host != "":
		set = "Host"
	default:
		a.Type = health.TCP
		return a, nil
	}
	return a, &ConfigError{Field: "Health.Active.Path",
		Reason: set + " is set but no Path: an HTTP probe needs a Path (without one, the probe is a TCP connect)"}
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
var ErrInvalidConfig = errors.New("vigil: invalid config")

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
		return &ConfigError{Field: field, Reason: hc.Reason, Err: err}
	}
	return err
}
