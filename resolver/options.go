package resolver

import (
	"log/slog"
	"time"
)

// Option configures a Source beyond its Config.
type Option func(*options)

type options struct {
	log        *slog.Logger
	backoff    backoff
	resolvConf string
}

func defaultOptions() options {
	return options{
		log:        slog.New(slog.DiscardHandler),
		backoff:    backoff{base: defaultBackoffBase, max: defaultBackoffMax},
		resolvConf: "/etc/resolv.conf",
	}
}

// WithLogger makes the Source log failures and fallbacks to l. By default it
// logs nothing; a nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// withBackoff sets the retry backoff after a failed resolution (defaults 1s
// doubling to 30s). Non-positive values keep the defaults.
func withBackoff(base, maxDelay time.Duration) Option {
	return func(o *options) {
		if base > 0 {
			o.backoff.base = base
		}
		if maxDelay > 0 {
			o.backoff.max = maxDelay
		}
	}
}

// withResolvConf sets the file read for servers when Config.Servers is
// empty.
func withResolvConf(path string) Option {
	return func(o *options) { o.resolvConf = path }
}
