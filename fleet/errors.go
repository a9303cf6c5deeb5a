package fleet

import "errors"

// Errors of the fleet, matched with errors.Is; the errors returned wrap
// them with the details.
var (
	// ErrRunning is returned by Run when the fleet is already running.
	ErrRunning = errors.New("fleet: already running")
	// ErrUnavailable: the NATS server could not be reached, or JetStream
	// or the buckets could not be used, within WithWait's time.
	ErrUnavailable = errors.New("fleet: NATS unavailable")
	// ErrIncompatible: a bucket was written in a format this version does
	// not read (a newer one), or is not a fleet bucket at all.
	ErrIncompatible = errors.New("fleet: incompatible bucket")
	// ErrMemberConflict: another instance, started later, uses this
	// member's id; this one stops sharing and leaves the fleet to it.
	ErrMemberConflict = errors.New("fleet: member id used by a newer instance")
	// ErrAttached: an upstream of that name is already attached.
	ErrAttached = errors.New("fleet: upstream already attached")
	// ErrNotProbed: the checker does not probe actively in both states,
	// so there would be no verdicts to share.
	ErrNotProbed = errors.New("fleet: checker without active probes")
)
