package resolver

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. A Failure's Err, and errors returned by NewSource and Run,
// match them with errors.Is. Each says "resolver: ..."; a *QueryError
// wrapping one does not repeat the prefix.
var (
	// ErrInvalidConfig is matched by every configuration error (*ConfigError).
	ErrInvalidConfig = errors.New("resolver: invalid config")
	// ErrRunning is returned by Run when the Source is already running.
	ErrRunning = errors.New("resolver: source already running")

	// ErrTimeout means a server did not answer in time.
	ErrTimeout = errors.New("resolver: timeout")
	// ErrServerFailure means a server answered SERVFAIL.
	ErrServerFailure = errors.New("resolver: server failure")
	// ErrRefused means a server answered REFUSED.
	ErrRefused = errors.New("resolver: refused")
	// ErrRcode means a server answered with another unexpected response code.
	ErrRcode = errors.New("resolver: unexpected response code")
	// ErrNXDomain means the name does not exist.
	ErrNXDomain = errors.New("resolver: no such name")
	// ErrNoData means the name exists but has no records of the type asked for.
	ErrNoData = errors.New("resolver: no records of the requested type")
	// ErrMalformed means a reply could not be parsed, or exceeded the bounds
	// on its size.
	ErrMalformed = errors.New("resolver: malformed reply")
	// ErrMismatch means a reply did not answer the question that was asked.
	ErrMismatch = errors.New("resolver: reply does not match the question")
	// ErrCNAMEChain means a CNAME chain loops or is longer than allowed.
	ErrCNAMEChain = errors.New("resolver: CNAME chain loops or is too long")
	// ErrNetwork means a server could not be reached.
	ErrNetwork = errors.New("resolver: network error")
)

// ConfigError describes an invalid Config field. It matches
// ErrInvalidConfig with errors.Is, and Err, when there is one, too.
type ConfigError struct {
	Field  string // the Config field, e.g. "MinTTL" or "Servers[1]"
	Reason string // what is wrong with its value
	Err    error  // the error behind Reason, if any (a server address that does not parse); may be nil
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("resolver: invalid config: %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns e.Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// QueryError describes a failed DNS query. Err is one of the sentinel errors
// of this package, possibly wrapping the underlying cause.
type QueryError struct {
	Name   string // the name queried (fully qualified, lower case)
	Type   string // the query type, e.g. "A" or "SRV"
	Server string // the server asked, "host:port"
	Err    error
}

// Error implements error: "resolver: web.test. A: timeout after 2s (server
// 10.0.0.1:53)". The "resolver: " of the sentinel in Err is not repeated.
func (e *QueryError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "resolver: ")
	}
	if e.Server == "" {
		return fmt.Sprintf("resolver: %s %s: %s", e.Name, e.Type, msg)
	}
	return fmt.Sprintf("resolver: %s %s: %s (server %s)", e.Name, e.Type, msg, e.Server)
}

// Unwrap returns e.Err.
func (e *QueryError) Unwrap() error { return e.Err }

// Temporary reports whether retrying the query may give another result:
// true for everything but NXDOMAIN and NODATA, which are authoritative.
func (e *QueryError) Temporary() bool {
	return !errors.Is(e.Err, ErrNXDomain) && !errors.Is(e.Err, ErrNoData)
}

// timeoutAfter returns ErrTimeout for an attempt over network ("udp" or
// "tcp") that got no reply within d: "resolver: timeout after 2s", or
// "resolver: timeout after 2s over TCP". The error the connection gave (its own
// deadline, or the close at the deadline) says nothing more and is dropped.
func timeoutAfter(d time.Duration, network string) error {
	if network == "tcp" {
		return fmt.Errorf("%w after %v over TCP", ErrTimeout, d)
	}
	return fmt.Errorf("%w after %v", ErrTimeout, d)
}

// cause wraps a sentinel with the error that led to it.
type cause struct {
	sentinel error
	err      error
}

func (c *cause) Error() string   { return c.sentinel.Error() + ": " + c.err.Error() }
func (c *cause) Unwrap() []error { return []error{c.sentinel, c.err} }

// wrap returns sentinel annotated with err, matching both with errors.Is.
func wrap(sentinel, err error) error {
	if err == nil {
		return sentinel
	}
	return &cause{sentinel: sentinel, err: err}
}
