package balancer

import (
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/resolver"
)

// Result is published on ResultTopic(Name) when a Call is Done: once per
// PickCall, PickKeyCall or PickCallExcept whose Done is called (so once per
// request an Upstream's Transport sends), if the Balancer was built
// WithBus. Plain Pick and PickKey are not counted: they stay free of any
// shared write.
type Result struct {
	Name    string           // the upstream
	Address resolver.Address // the picked address
	Outcome Outcome          // as passed to Done
}

// ResultTopic returns the bus topic on which a Balancer of the upstream name
// built WithBus publishes a Result for every Call that is Done. Its
// subscribers receive every result, in order.
func ResultTopic(name string) events.Topic[Result] {
	return events.NewTopic[Result]("balancer.result/" + resolver.NormalizeName(name))
}

// resultPublisher publishes the Results of one Balancer.
type resultPublisher struct {
	bus   *events.Bus
	name  string
	topic events.Topic[Result]
}

// publish sends the Result of a Call; p may be nil.
func (p *resultPublisher) publish(a resolver.Address, o Outcome) {
	if p == nil {
		return
	}
	events.Publish(p.bus, p.topic, Result{Name: p.name, Address: a, Outcome: o})
}
