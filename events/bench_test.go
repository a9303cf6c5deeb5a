package events_test

import (
	"sync/atomic"
	"testing"

	evbus "github.com/asaskevich/EventBus"

	"github.com/vigil-go/vigil/events"
)

// The benchmarks run the same workloads on this package and on raw EventBus
// (asynchronous, transactional: the mode that keeps publish order), so one
// run gives the ratio.

// BenchmarkThroughput publishes b.N values to one subscriber and waits until
// the last is delivered.
func BenchmarkThroughput(b *testing.B) { benchDeliverAll(b, 1) }

// BenchmarkFanOut publishes to 16 subscribers and waits for all deliveries.
func BenchmarkFanOut(b *testing.B) { benchDeliverAll(b, 16) }

// benchDeliverAll publishes b.N values to subs subscribers and waits until
// every one has received every value.
func benchDeliverAll(b *testing.B, subs int) {
	b.Run("vigil", func(b *testing.B) {
		bus := events.New()
		defer bus.Close()
		topic := events.NewTopic[int]("bench")
		handler, done := countdown(b.N * subs)
		for range subs {
			defer events.Subscribe(bus, topic, handler)()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			events.Publish(bus, topic, i)
		}
		<-done
	})
	b.Run("EventBus", func(b *testing.B) {
		bus := evbus.New()
		handler, done := countdown(b.N * subs)
		for range subs {
			if err := bus.SubscribeAsync("bench", handler, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			bus.Publish("bench", i)
		}
		<-done
		bus.WaitAsync()
	})
}

// countdown returns a handler and a channel closed when the handler has
// been called n times, from any number of goroutines.
func countdown(n int) (func(int), <-chan struct{}) {
	done := make(chan struct{})
	var got atomic.Int64
	return func(int) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, done
}

// BenchmarkLatency measures one publish-to-delivery round: publish, then
// wait until the handler has run.
func BenchmarkLatency(b *testing.B) {
	b.Run("vigil", func(b *testing.B) {
		bus := events.New()
		defer bus.Close()
		topic := events.NewTopic[int]("bench")
		delivered := make(chan struct{})
		defer events.Subscribe(bus, topic, func(int) { delivered <- struct{}{} })()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			events.Publish(bus, topic, i)
			<-delivered
		}
	})
	b.Run("EventBus", func(b *testing.B) {
		bus := evbus.New()
		delivered := make(chan struct{})
		if err := bus.SubscribeAsync("bench", func(int) { delivered <- struct{}{} }, true); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			bus.Publish("bench", i)
			<-delivered
		}
		bus.WaitAsync()
	})
}

// BenchmarkPublishUnfollowed is what a publisher pays for an event nobody
// follows (a probe result with no metrics attached, say): it must not
// allocate.
func BenchmarkPublishUnfollowed(b *testing.B) {
	bus := events.New()
	defer bus.Close()
	topic := events.NewTopic[int]("bench")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		events.Publish(bus, topic, i)
	}
}

// BenchmarkSubscribe subscribes b.N handlers to one topic.
func BenchmarkSubscribe(b *testing.B) {
	bus := events.New()
	defer bus.Close()
	topic := events.NewTopic[int]("bench")
	unsubs := make([]func(), 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		unsubs = append(unsubs, events.Subscribe(bus, topic, func(int) {}))
	}
	b.StopTimer()
	for _, u := range unsubs {
		u()
	}
}

// BenchmarkUnsubscribe removes b.N idle subscriptions of one topic.
func BenchmarkUnsubscribe(b *testing.B) {
	bus := events.New()
	defer bus.Close()
	topic := events.NewTopic[int]("bench")
	unsubs := make([]func(), b.N)
	for i := range unsubs {
		unsubs[i] = events.Subscribe(bus, topic, func(int) {})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, u := range unsubs {
		u()
	}
}

// BenchmarkTopicChurn subscribes to a topic nobody else follows and
// unsubscribes again: the cost of an upstream that comes and goes, paid
// once per topic it follows.
func BenchmarkTopicChurn(b *testing.B) {
	bus := events.New()
	defer bus.Close()
	topic := events.NewTopic[int]("bench")
	b.ReportAllocs()
	for b.Loop() {
		events.Subscribe(bus, topic, func(int) {})()
	}
}
