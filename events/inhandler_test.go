package events

import "testing"

// nested calls inHandler depth calls down.
func nested(depth int) bool {
	if depth == 0 {
		return inHandler()
	}
	return nested(depth - 1)
}

// TestInHandler covers stacks deeper than inHandler's first look.
func TestInHandler(t *testing.T) {
	b := New()
	defer b.Close()
	topic := NewTopic[int]("in-handler")
	got := make(chan [2]bool, 1)
	defer Subscribe(b, topic, func(int) { got <- [2]bool{nested(0), nested(500)} })()
	Publish(b, topic, 1)
	if r := <-got; !r[0] || !r[1] {
		t.Errorf("in a handler, inHandler = %v at depth 0 and %v at depth 500; want true", r[0], r[1])
	}
	if nested(0) || nested(500) {
		t.Error("outside any handler, inHandler reports true")
	}
}
