package resolver

import (
	"time"

	"github.com/vigil-go/vigil/events"
)

// Recovery is published on RecoveryTopic(Name) by the first resolution
// that publishes no Failure after one or more resolutions that did (full,
// partial or negative ones): it ends the streak of Failures.
type Recovery struct {
	Name     string
	Failures int           // the Failures of the streak
	Duration time.Duration // from the first Failure of the streak to this resolution
	Err      error         // the last Failure's Err
}

// RecoveryTopic returns the bus topic on which the Source of name
// publishes its Recoveries. It is an event topic, like FailureTopic: a
// subscriber receives only the Recoveries published after it subscribed.
// Whether resolution is failing now is told by the Failures and Recoveries
// together; the address set itself is the state, on Topic.
func RecoveryTopic(name string) events.Topic[Recovery] {
	return events.NewTopic[Recovery]("resolver.recovery/" + NormalizeName(name))
}
