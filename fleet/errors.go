package fleet

import "errors"

// Errors of the fleet, matched with errors.Is; the errors returned wrap
// them with the details.
var (
	// ErrInvalidConfig is matched by every *ConfigError.
	ErrInvalidConfig = errors.New("fleet: invalid config")
	// ErrRunning is returned by Run when the fleet is already running.
	ErrRunning = errors.New("fleet: already running")
	// ErrUnavailable: the NATS server could not be reached, or JetStream
	// or the bucket could not be used, within WithWait's time.
	ErrUnavailable = errors.New("fleet: NATS unavailable")
	// ErrIncompatible: the bucket was written in a format this version does
	// not read, or is not a fleet bucket at all.
	ErrIncompatible = errors.New("fleet: incompatible bucket")
	// ErrMemberConflict: another instance, started later, uses this
	// member's id; this one stops sharing and leaves the fleet to it.
	ErrMemberConflict = errors.New("fleet: member id used by a newer instance")
	// ErrDenied: the NATS server refused an operation the fleet needs
	// (its permissions do not allow this member to publish or subscribe
	// to a subject; docs/fleet.md lists them). The member probes every
	// address locally and tries again later.
	ErrDenied = errors.New("fleet: refused by the NATS server's permissions")
	// ErrAttached: an upstream of that name is already attached.
	ErrAttached = errors.New("fleet: upstream already attached")
	// ErrNotProbed: the checker does not probe actively in both states,
	// so there would be no verdicts to share.
	ErrNotProbed = errors.New("fleet: checker without active probes")
)

// ConfigError reports an invalid Config field, or an invalid argument
// (Field then names it). It matches ErrInvalidConfig with errors.Is.
type ConfigError struct {
	Field  string // "Probers", "Member", ...
	Reason string
	Err    error // the underlying error, if any
}

// Error implements error: "fleet: invalid config: <Field>: <Reason>".
func (e *ConfigError) Error() string { return "fleet: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }
