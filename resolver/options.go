package resolver

import (
	"log/slog"
	"time"
)

// Option configures a Source beyond its Config.
type Option func(*options)

type options struct {
	log        *slog.Logger
	backoff    *Backoff // overrides Config.Backoff when set (tests)
	resolvConf string
	port       string        // of resolv.conf's nameservers
	noEDNSFor  time.Duration // how long a server that rejected EDNS0 is asked without it
	exchanger  exchanger     // replaces the network (tests); nil: UDP and TCP
}

func defaultOptions() options {
	return options{
		log:        slog.New(slog.DiscardHandler),
		resolvConf: DefaultResolvConf,
		port:       "53",
		noEDNSFor:  defaultNoEDNSFor,
	}
}

// WithLogger makes the Source log to l: address-set changes and recoveries
// at Info, failures at Warn, each with why. By default it logs nothing; a
// nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithResolvConf sets the resolver configuration file read when
// Config.Servers is empty (default /etc/resolv.conf): its nameservers, its
// search list (or domain) and ndots for relative names, and its options
// timeout, attempts and rotate. The file is read again when it changes. A
// missing file is no error: the Source asks 127.0.0.1:53, as the system
// resolver does, and logs a warning. An empty path keeps the default.
func WithResolvConf(path string) Option {
	return func(o *options) {
		if path != "" {
			o.resolvConf = path
		}
	}
}

// withBackoff sets the retry backoff after a failed resolution, over
// Config.Backoff, without jitter (tests). Non-positive values keep the
// defaults.
func withBackoff(initial, maxDelay time.Duration) Option {
	return func(o *options) {
		b := Backoff{Initial: initial, Max: maxDelay, Jitter: -1}
		if initial <= 0 {
			b.Initial = DefaultBackoffInitial
		}
		if maxDelay <= 0 {
			b.Max = DefaultBackoffMax
		}
		o.backoff = &b
	}
}

// withNameserverPort sets the port of resolv.conf's nameservers (53), so
// that tests can point a file at servers on other ports.
func withNameserverPort(port string) Option {
	return func(o *options) { o.port = port }
}

// withNoEDNSFor sets how long a server that rejected EDNS0 is asked without
// it (10 minutes), for tests.
func withNoEDNSFor(d time.Duration) Option {
	return func(o *options) { o.noEDNSFor = d }
}

// withExchanger makes the Source send its queries to x instead of the
// network, for tests that run on a fake clock (testing/synctest).
func withExchanger(x exchanger) Option {
	return func(o *options) { o.exchanger = x }
}
