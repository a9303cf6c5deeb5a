package fleet

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Option configures a Fleet beyond its Config.
type Option func(*Fleet)

// WithLogger logs to l why the fleet does what it does: connecting,
// falling back to local probing and why, sharing again, taking over an
// address from a member that left or stopped writing (Info and Warn), and
// each verdict applied from another member (Debug). The default logs
// nothing; a nil l keeps it.
func WithLogger(l *slog.Logger) Option {
	return func(f *Fleet) {
		if l != nil {
			f.log = l
		}
	}
}

// WithWait makes New wait up to d for the fleet to be usable: it connects,
// opens (or creates) both buckets and checks their format, then closes
// that connection; New returns an error matching ErrUnavailable or
// ErrIncompatible if it cannot. Without it (or with d <= 0) New connects
// to nothing, and a server that cannot be reached is logged by Run, which
// probes locally and keeps trying.
func WithWait(d time.Duration) Option {
	return func(f *Fleet) { f.wait = d }
}

// WithNATSOptions adds options to the connection the fleet dials to
// Config.URL (credentials, TLS, names), after its own: reconnect forever
// every 250ms, retry a failed first connection, ping every 2s. They are
// not used with Config.Conn.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(f *Fleet) { f.natsOpts = append(f.natsOpts, opts...) }
}
