package events_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/vigil-go/vigil/events"
)

// unblock closes ch unless it is closed: a test that fails lets its
// handlers go, so that the bus can close.
func unblock(ch chan struct{}) {
	if !closed(ch) {
		close(ch)
	}
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestUnsubscribeWaitsForDeliveryInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := events.New()
		defer b.Close()
		topic := events.NewTopic[int]("wait")
		other := events.NewTopic[int]("other")

		entered := make(chan struct{})
		release := make(chan struct{})
		defer unblock(release)
		state := 0 // written by the handler, read once unsubscribe returned: no lock
		unsub := events.Subscribe(b, topic, func(v int) {
			close(entered)
			<-release
			// A handler still running while its unsubscribe waits may
			// use the bus.
			events.Publish(b, other, v)
			events.Subscribe(b, other, func(int) {})()
			state = v
		})
		heard := newRecorder[int]()
		defer events.Subscribe(b, other, heard.add)()

		events.Publish(b, topic, 1)
		<-entered
		returned := make(chan struct{})
		go func() {
			unsub()
			if state != 1 {
				t.Errorf("after unsubscribe returned the handler's state is %d, want 1", state)
			}
			close(returned)
		}()
		synctest.Wait()
		if closed(returned) {
			t.Fatal("unsubscribe returned while the handler was still running")
		}

		// Waiting holds up nobody else.
		events.Publish(b, other, 2)
		synctest.Wait()
		if got := heard.values(); len(got) != 1 || got[0] != 2 {
			t.Fatalf("while an unsubscribe waited another subscriber got %v, want [2]", got)
		}

		unblock(release)
		synctest.Wait()
		if !closed(returned) {
			t.Fatal("unsubscribe did not return once the handler had returned")
		}
		if got := heard.values(); len(got) != 2 || got[1] != 1 {
			t.Fatalf("the handler's own publish was not delivered: got %v, want [2 1]", got)
		}
	})
}

func TestUnsubscribeFromOwnHandlerReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := events.New()
		defer b.Close()
		topic := events.NewTopic[int]("self")

		entered := make(chan struct{})
		release := make(chan struct{})
		defer unblock(release)
		selfReturned := make(chan struct{})
		var calls atomic.Int64
		state := 0
		var unsub func()
		unsub = events.Subscribe(b, topic, func(v int) {
			calls.Add(1)
			close(entered)
			<-release
			unsub() // the handler unsubscribes itself while another caller waits for it
			close(selfReturned)
			state = v
		})
		events.Publish(b, topic, 1)
		events.Publish(b, topic, 2) // queued: never delivered
		<-entered

		returned := make(chan struct{})
		go func() {
			unsub()
			if state != 1 {
				t.Errorf("after unsubscribe returned the handler's state is %d, want 1", state)
			}
			close(returned)
		}()
		synctest.Wait()
		if closed(returned) {
			t.Fatal("unsubscribe returned while the handler was still running")
		}
		unblock(release)
		synctest.Wait()
		if !closed(selfReturned) {
			t.Fatal("unsubscribe called from its own handler did not return")
		}
		if !closed(returned) {
			t.Fatal("unsubscribe did not return once the handler had returned")
		}
		events.Publish(b, topic, 3)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler ran %d times, want 1", n)
		}
	})
}

func TestHandlersUnsubscribingEachOtherReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := events.New()
		defer b.Close()
		topic := events.NewTopic[int]("mutual")

		// Two handlers, both running, each unsubscribes the other. Waiting
		// for the other's delivery would deadlock: each returns at once.
		var unsubA, unsubB func()
		var calls atomic.Int64
		var arrived sync.WaitGroup
		arrived.Add(2)
		both := make(chan struct{})
		defer unblock(both)
		done := make(chan struct{}, 2)
		handler := func(unsubOther *func()) func(int) {
			return func(int) {
				calls.Add(1)
				arrived.Done()
				<-both
				(*unsubOther)()
				done <- struct{}{}
			}
		}
		unsubA = events.Subscribe(b, topic, handler(&unsubB))
		unsubB = events.Subscribe(b, topic, handler(&unsubA))
		events.Publish(b, topic, 1)
		arrived.Wait()
		unblock(both)
		synctest.Wait()
		if n := len(done); n != 2 {
			t.Fatalf("%d of 2 handlers returned from unsubscribing the other", n)
		}
		events.Publish(b, topic, 2)
		synctest.Wait()
		if n := calls.Load(); n != 2 {
			t.Fatalf("handlers ran %d times, want 2: one of them was still subscribed", n)
		}
		unsubA() // neither delivers any more: returns at once
		unsubB()
	})
}

// TestNoHandlerRunsAfterUnsubscribeReturns unsubscribes while values keep
// arriving. Run with -race: the handler writes state without a lock, which
// the test reads once unsubscribe returned.
func TestNoHandlerRunsAfterUnsubscribeReturns(t *testing.T) {
	b := events.New()
	defer b.Close()
	for round := range 50 {
		topic := events.NewTopic[int]("late")
		var (
			unsubscribed atomic.Bool
			late         atomic.Int64
			state        int // no lock: the race detector reports a write after unsubscribe returned
			got          = make(chan struct{}, 1)
		)
		unsub := events.Subscribe(b, topic, func(v int) {
			for range 100 {
				state++ // a handler that takes a while, one step at a time
			}
			state = v
			if unsubscribed.Load() {
				late.Add(1)
			}
			select {
			case got <- struct{}{}:
			default:
			}
		})
		stop := make(chan struct{})
		var pub sync.WaitGroup
		pub.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				events.Publish(b, topic, i)
			}
		})
		<-got // a delivery has run; more are under way
		unsub()
		unsubscribed.Store(true)
		_ = state
		close(stop)
		pub.Wait()
		settle(t, b)
		if n := late.Load(); n != 0 {
			t.Fatalf("round %d: %d handler calls ended after unsubscribe returned", round, n)
		}
	}
}
