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
func BenchmarkThroughput(b *testing.B) {
	b.Run("vigil", func(b *testing.B) {
		bus := events.New()
		defer bus.Close()
		topic := events.NewTopic[int]("bench")
		done := make(chan struct{})
		n := int64(b.N)
		var got atomic.Int64
		defer events.Subscribe(bus, topic, func(int) {
			if got.Add(1) == n {
				close(done)
			}
		})()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			events.Publish(bus, topic, i)
		}
		<-done
	})
	b.Run("EventBus", func(b *testing.B) {
		bus := evbus.New()
		done := make(chan struct{})
		n := int64(b.N)
		var got atomic.Int64
		if err := bus.SubscribeAsync("bench", func(int) {
			if got.Add(1) == n {
				close(done)
			}
		}, true); err != nil {
			b.Fatal(err)
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

// BenchmarkFanOut publishes to 16 subscribers and waits for all deliveries.
func BenchmarkFanOut(b *testing.B) {
	const subs = 16
	b.Run("vigil", func(b *testing.B) {
		bus := events.New()
		defer bus.Close()
		topic := events.NewTopic[int]("bench")
		done := make(chan struct{})
		n := int64(b.N) * subs
		var got atomic.Int64
		for range subs {
			defer events.Subscribe(bus, topic, func(int) {
				if got.Add(1) == n {
					close(done)
				}
			})()
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
		done := make(chan struct{})
		n := int64(b.N) * subs
		var got atomic.Int64
		for range subs {
			if err := bus.SubscribeAsync("bench", func(int) {
				if got.Add(1) == n {
					close(done)
				}
			}, true); err != nil {
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
