package health

import (
	"strconv"
	"time"

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
// changes between Healthy and Unhealthy, or one of its verdicts does: every
// passive ejection and its end is one. From and To are the target's status
// (Unhealthy when either verdict is); they are equal when a verdict changed
// under the other one's Unhealthy. Adding or removing a target is not a
// status change (see Checker.Changed).
type StatusChange struct {
	Name     string
	Address  resolver.Address
	From, To Status
	// Active and Passive are the verdicts after the change.
	Active, Passive Status
	// Reason says why: the outcome that decided ("HTTP 500", "connection
	// refused", "timeout after 1s", "outlier: success rate 48% below
	// 91%", "HTTP 503 with Retry-After 5s", "ejection over", ...).
	Reason string
	// Until is when the passive ejection ends, while Passive is Unhealthy.
	Until time.Time
}

// StatusTopic returns the bus topic on which the checker of the upstream name
// publishes its StatusChanges. It is an event topic: its subscribers receive
// every change published after they subscribed, in order.
func StatusTopic(name string) events.Topic[StatusChange] {
	return events.NewTopic[StatusChange]("health.status/" + resolver.NormalizeName(name))
}
