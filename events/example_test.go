package events_test

import (
	"fmt"

	"github.com/vigil-go/vigil/events"
)

func Example() {
	bus := events.New()
	defer bus.Close()

	// A state topic retains its latest value: a late subscriber gets it first.
	temperature := events.NewStateTopic[float64]("temperature")
	events.Publish(bus, temperature, 21.5)

	got := make(chan float64, 2)
	unsubscribe := events.Subscribe(bus, temperature, func(v float64) { got <- v })
	defer unsubscribe()
	fmt.Println(<-got) // the retained value comes first
	events.Publish(bus, temperature, 22.0)
	fmt.Println(<-got)

	// An event topic never replays: what was published before is not delivered.
	alarms := events.NewTopic[string]("alarms")
	events.Publish(bus, alarms, "too hot (before anyone listened)")
	heard := make(chan string, 2)
	defer events.Subscribe(bus, alarms, func(s string) { heard <- s })()
	events.Publish(bus, alarms, "too cold")
	fmt.Println(<-heard)
	// Output:
	// 21.5
	// 22
	// too cold
}

// Unsubscribing waits for a call of the handler in progress: once it has
// returned, what the handler wrote can be read without a lock.
func ExampleSubscribe() {
	bus := events.New()
	defer bus.Close()
	readings := events.NewTopic[int]("readings")

	sum := 0
	last := make(chan struct{})
	unsubscribe := events.Subscribe(bus, readings, func(v int) {
		if v == 3 {
			close(last) // says the last value arrived, before adding it
		}
		sum += v
	})
	for v := 1; v <= 3; v++ {
		events.Publish(bus, readings, v)
	}
	<-last
	unsubscribe() // returns once the handler has returned
	fmt.Println(sum)
	// Output: 6
}
