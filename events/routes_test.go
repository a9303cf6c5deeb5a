package events

import (
	"reflect"
	"strconv"
	"testing"
)

// routes returns how many routes the EventBus instances that b wraps hold:
// the keys of their handler maps, read by reflection because EventBus does
// not say. It fails the test when a route is not one of a followed topic.
func (b *Bus) routes(t *testing.T) int {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, tp := range b.topics {
		if tp.eb == nil {
			continue
		}
		keys := reflect.ValueOf(tp.eb).Elem().FieldByName("handlers").Len()
		if keys != 1 || len(tp.subs) == 0 {
			t.Errorf("topic %q: %d routes for %d subscribers, want 1 route while followed", k.name, keys, len(tp.subs))
		}
		n += keys
	}
	return n
}

// TestWrappedBusBoundedByLiveTopics lets 10,000 topics, event and state,
// come and go, a few alive at once, as upstreams do on a shared bus.
func TestWrappedBusBoundedByLiveTopics(t *testing.T) {
	b := New()
	defer b.Close()
	const n, alive = 10000, 8
	var unsubs [alive]func()
	var states [alive]Topic[int]
	for i := range n {
		slot := i % alive
		if unsubs[slot] != nil {
			unsubs[slot]()
			Release(b, states[slot])
		}
		event := NewTopic[int]("e" + strconv.Itoa(i))
		state := NewStateTopic[int]("s" + strconv.Itoa(i))
		Publish(b, state, i)
		ue := Subscribe(b, event, func(int) {})
		us := Subscribe(b, state, func(int) {})
		unsubs[slot], states[slot] = func() { ue(); us() }, state
		if got := b.routes(t); got > 2*alive {
			t.Fatalf("after %d topics, %d alive, the wrapped bus routes %d", 2*(i+1), 2*alive, got)
		}
	}
	for slot := range alive {
		unsubs[slot]()
		Release(b, states[slot])
	}
	if got := b.routes(t); got != 0 {
		t.Fatalf("with no topic alive the wrapped bus routes %d topics", got)
	}
	if got := b.Len(); got != 0 {
		t.Fatalf("with no topic alive Len = %d", got)
	}
}
