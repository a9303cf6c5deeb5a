package statuspage

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults of Config's zero values.
const (
	DefaultTitle         = "vigil"
	DefaultRefresh       = 5 * time.Second
	DefaultWindow        = 5 * time.Minute
	DefaultMaxUpstreams  = 20
	DefaultMaxAddresses  = 100
	DefaultMaxRemembered = 20
	DefaultMaxChanges    = 20
)

// Config configures a Handler. Zero values mean the documented defaults;
// New returns a *ConfigError for invalid values.
type Config struct {
	// Title heads the page; default DefaultTitle. It is shown as text.
	Title string
	// Refresh is how often the HTML page reloads itself while it is open,
	// rounded up to whole seconds; 0 means DefaultRefresh (5s), a negative
	// value never. A request's "refresh" query parameter (seconds; 0: off)
	// overrides it for that page.
	Refresh time.Duration
	// Window is the span of the status timelines, ending now; 0 means
	// DefaultWindow (5m).
	Window time.Duration
	// MaxUpstreams caps the upstreams shown (those with an unhealthy
	// address or a failing DNS first); 0 means DefaultMaxUpstreams (20).
	MaxUpstreams int
	// MaxAddresses caps the live addresses shown per upstream (the
	// unhealthy ones first), and the addresses shown of its last DNS
	// answer; 0 means DefaultMaxAddresses (100).
	MaxAddresses int
	// MaxRemembered caps the remembered addresses shown per upstream; 0
	// means DefaultMaxRemembered (20).
	MaxRemembered int
	// MaxChanges caps the status changes shown per address; 0 means
	// DefaultMaxChanges (20).
	MaxChanges int
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("statuspage: invalid config")

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field  string // "MaxAddresses"
	Reason string
	Err    error // may be nil
}

// Error implements error.
func (e *ConfigError) Error() string {
	return "statuspage: invalid config: " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the underlying error, if any.
func (e *ConfigError) Unwrap() error { return e.Err }

// normalize checks c and fills in its defaults.
func normalize(c Config) (Config, error) {
	if c.Title == "" {
		c.Title = DefaultTitle
	}
	c.Title = text(c.Title)
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	switch {
	case c.Window < 0:
		return c, &ConfigError{Field: "Window", Reason: "negative"}
	case c.Window == 0:
		c.Window = DefaultWindow
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxUpstreams", &c.MaxUpstreams, DefaultMaxUpstreams},
		{"MaxAddresses", &c.MaxAddresses, DefaultMaxAddresses},
		{"MaxRemembered", &c.MaxRemembered, DefaultMaxRemembered},
		{"MaxChanges", &c.MaxChanges, DefaultMaxChanges},
	} {
		switch {
		case *f.v < 0:
			return c, &ConfigError{Field: f.name, Reason: "negative"}
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return c, nil
}

// Option configures a Handler beyond its Config.
type Option func(*options)

type options struct {
	log   *slog.Logger
	roles Roles
}

// WithLogger logs to l why a page could not be served (a response that
// could not be written). The default logs nothing; a nil l keeps it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithRoles shows each address's role in a fleet sharing verdicts, as
// roles tells it. Without it (or with a nil roles) the page shows none.
func WithRoles(roles Roles) Option {
	return func(o *options) { o.roles = roles }
}
