package health

import (
	"strconv"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/resolver"
)

// Status is the health of a target.
type Status int

const (
	// Unknown is the zero value: the address is not a target.
	Unknown Status = iota
	// Healthy targets receive traffic.
	Healthy
	// Unhealthy targets do not.
	Unhealthy
)

// String returns "unknown", "healthy" or "unhealthy".
func (s Status) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// StatusChange is published on StatusTopic(Name) whenever a target's status
// changes between Healthy and Unhealthy. Adding or removing a target is not a
// status change (see Checker.Changed).
type StatusChange struct {
	Name     string
	Address  resolver.Address
	From, To Status
}

// StatusTopic returns the bus topic on which the checker of the upstream name
// publishes its StatusChanges. Its subscribers receive every change, in order.
func StatusTopic(name string) events.Topic[StatusChange] {
	return events.NewTopic[StatusChange]("health.status/" + resolver.NormalizeName(name))
}
