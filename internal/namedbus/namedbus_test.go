package namedbus

import (
	"log/slog"
	"testing"

	"github.com/vigil-go/vigil/events"
)

// The first live upstream of a name gets the shared bus; another of that
// name alive at the same time gets one of its own; once the first is
// released, the name's next upstream gets the shared bus again.
func TestAcquire(t *testing.T) {
	shared := events.New()
	defer shared.Close()
	s := New(shared, slog.New(slog.DiscardHandler))
	a, releaseA := s.Acquire("api.internal")
	b, releaseB := s.Acquire("api.internal")
	c, releaseC := s.Acquire("auth.internal")
	if a != shared || c != shared {
		t.Fatal("the first upstream of a name did not get the shared bus")
	}
	if b == shared {
		t.Fatal("a second live upstream of one name got the shared bus")
	}
	releaseB()
	releaseA()
	d, releaseD := s.Acquire("api.internal")
	if d != shared {
		t.Fatal("the name was not freed on the shared bus")
	}
	releaseC()
	releaseD()
}
