package events_test

import (
	"fmt"

	"github.com/vigil-go/vigil/events"
)

func Example() {
	bus := events.New()
	temperature := events.NewTopic[float64]("temperature")

	// A value published before anyone listens is retained.
	events.Publish(bus, temperature, 21.5)

	got := make(chan float64, 2)
	unsubscribe := events.Subscribe(bus, temperature, func(v float64) { got <- v })
	events.Publish(bus, temperature, 22.0)

	fmt.Println(<-got) // the retained value comes first
	fmt.Println(<-got)
	unsubscribe()
	bus.Close()
	// Output:
	// 21.5
	// 22
}
