package health

import (
	"crypto/tls"
	"log/slog"

	"github.com/vigil-go/vigil/resolver"
)

// DefaultMaxProbes is how many probes may be in flight at once unless
// WithMaxProbes says otherwise.
const DefaultMaxProbes = 256

// DefaultMaxIdleConns is how many HTTP(S) probe connections a checker keeps
// open between probes unless WithMaxIdleConns says otherwise.
const DefaultMaxIdleConns = 1024

// Option configures a Checker beyond its Config: the rare knobs.
type Option func(*options)

// options are what Options set; NewChecker starts from defaultOptions.
type options struct {
	log       *slog.Logger
	tlsConfig *tls.Config // nil: verify against the system roots
	maxProbes int
	maxIdle   int
	filter    func([]resolver.Address) []resolver.Address // nil: every address
	memory    *Memory                                     // nil: a memory of the checker's own
}

func defaultOptions() options {
	return options{
		log:       slog.New(slog.DiscardHandler),
		maxProbes: DefaultMaxProbes,
		maxIdle:   DefaultMaxIdleConns,
	}
}

// WithLogger logs status and verdict changes with their reasons (Info) and
// reconciliations (Debug) to l.
// The default logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithTLSConfig sets the TLS configuration of HTTPS probes (root CAs, client
// certificates, or InsecureSkipVerify to turn verification off). It is
// cloned; ServerName is set per target, and its ClientSessionCache, when
// nil, is the checker's bounded one. The default verifies against the
// system roots.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg != nil {
			o.tlsConfig = cfg.Clone()
		}
	}
}

// WithMaxProbes caps how many probes run at once, each on a goroutine that
// exists only while its probe runs; values below 1 keep DefaultMaxProbes.
func WithMaxProbes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxProbes = n
		}
	}
}

// WithTargetFilter makes the checker hold only the addresses f keeps of
// every address set, from Changes and SetTargets alike: subsetting (each
// client of a large fleet checks and uses k of the M addresses) plugs in
// here. f must be a pure function of its argument, return a subset of it
// (in its order, which keeps reconciling cheap) and not call the checker.
// Addresses f drops leave as any removed address does: into memory.
func WithTargetFilter(f func([]resolver.Address) []resolver.Address) Option {
	return func(o *options) { o.filter = f }
}

// WithMaxIdleConns caps how many HTTP(S) probe connections the checker
// keeps open between probes, one per target at most (default
// DefaultMaxIdleConns): beyond it a probe closes its connection when it
// ends, and the target's next probe opens a new one. A kept connection
// costs a file descriptor and no goroutine. 0 keeps none; values below 0
// keep the default.
func WithMaxIdleConns(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.maxIdle = n
		}
	}
}

// WithMemory makes the checker remember departed targets in m, which it
// may share with other checkers, instead of in a memory of its own: then
// Config.Memory does not size it (m's own size does, whatever Update says)
// and, when Run returns, the checker also leaves the state of every live
// target in m, so that the next checker of the same Config.Name given m
// starts from it (see Memory). A nil m keeps the checker's own memory.
func WithMemory(m *Memory) Option {
	return func(o *options) { o.memory = m }
}
