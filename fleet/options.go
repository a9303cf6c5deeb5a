package fleet

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Option configures a Fleet beyond its Config.
type Option func(*options)

// options are the rare knobs, set by Options.
type options struct {
	log      *slog.Logger
	wait     time.Duration
	natsOpts []nats.Option
}

// WithLogger logs to l why the fleet does what it does: connecting,
// falling back to local probing and why, sharing again, taking up an
// address for the fleet and why, a prober whose verdicts keep disagreeing
// with the others' (Info and Warn), and each verdict applied from another
// member (Debug). The default logs nothing; a nil l keeps it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithWait makes New wait up to d for the fleet to be usable: it connects,
// opens (or creates) the bucket and checks its format, then closes that
// connection; New returns an error matching ErrUnavailable,
// ErrIncompatible or ErrDenied if it cannot. Without it (or with d <= 0)
// New connects to nothing, and a server that cannot be reached is logged
// by Run, which probes locally and keeps trying.
func WithWait(d time.Duration) Option {
	return func(o *options) { o.wait = d }
}

// WithNATSOptions adds options to the connection the fleet dials to
// Config.URL (credentials, TLS, names), after its own: reconnect forever
// every 250ms, retry a failed first connection, ping every 2s, report
// permission errors to the fleet (an ErrorHandler given here replaces
// that: the fleet then notices a refusal only when the operation times
// out). They are not used with Config.Conn.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.natsOpts = append(o.natsOpts, opts...) }
}
