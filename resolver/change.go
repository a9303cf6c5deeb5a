package resolver

import (
	"time"

	"github.com/vigil-go/vigil/events"
)

// Change is published on Topic(Name) whenever the resolved address set of a
// name differs from the previously published one.
//
// Every Change carries the whole current set, so a consumer that missed or
// reordered deliveries recovers by applying the newest Version it has seen
// and ignoring any Change whose Version is not newer.
type Change struct {
	Name      string
	Version   uint64    // strictly increasing per name, also across a new Source for that name
	Addresses []Address // the whole current set, in canonical order
	Added     []Address // in Addresses but not in the previous Change
	Removed   []Address // in the previous Change but not in Addresses
}

// Topic returns the bus topic on which Changes for name are published.
// It is a state topic: a late subscriber first receives the latest Change,
// and a subscriber that falls behind skips to the newest one.
func Topic(name string) events.Topic[Change] {
	return events.NewStateTopic[Change]("resolver.change/" + NormalizeName(name))
}

// Failure is published on FailureTopic(Name) when a resolution fails, and
// when it gives no records (NXDOMAIN, NODATA). The last good address set
// stays in effect (for NXDOMAIN and NODATA, for Config.NXDomainHold).
//
// A partial failure (Partial true) is a resolution of which a part failed,
// the A or the AAAA lookup of a name (Type A or IP), or lookups of SRV
// targets, while the rest answered: the rest is applied (a Change may come
// with it), and the failed parts keep their last addresses.
type Failure struct {
	Name    string
	Err     error         // inspectable with errors.Is/As
	Next    time.Duration // when the source tries again
	Partial bool          // the rest of the answer was applied; only the failed parts kept their last addresses
}

// FailureTopic returns the bus topic on which resolution Failures for name
// are published. It is an event topic: a subscriber receives only the
// Failures published after it subscribed.
func FailureTopic(name string) events.Topic[Failure] {
	return events.NewTopic[Failure]("resolver.failure/" + NormalizeName(name))
}
