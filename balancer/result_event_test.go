package balancer

import (
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// resultLog records the Results of one upstream.
type resultLog struct {
	mu  sync.Mutex
	res []Result
}

func recordResults(t *testing.T, bus *events.Bus, name string) *resultLog {
	t.Helper()
	l := &resultLog{}
	t.Cleanup(events.Subscribe(bus, ResultTopic(name), func(r Result) {
		l.mu.Lock()
		l.res = append(l.res, r)
		l.mu.Unlock()
	}))
	return l
}

func (l *resultLog) all() []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Result(nil), l.res...)
}

// waitResults waits until l holds n results and returns them.
func (l *resultLog) wait(t *testing.T, n int) []Result {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(l.all()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d results, want %d", len(l.all()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return l.all()
}

// Done publishes a Result with the picked address and the outcome; Pick and
// PickKey publish nothing.
func TestResultTopicCalls(t *testing.T) {
	bus := events.New()
	t.Cleanup(bus.Close)
	l := recordResults(t, bus, "api")
	cfg := passiveConfig("api")
	cfg.Passive = health.Passive{} // default thresholds: no outcome below turns the target unhealthy
	c, err := health.NewChecker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTargets([]resolver.Address{addr(1)})
	b := New(c, WithBus(bus))

	for range 3 {
		if _, err := b.Pick(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.PickKey("k"); err != nil {
		t.Fatal(err)
	}
	outcomes := []Outcome{Success, HTTPStatus(503), ConnFailure, Timeout, Ignore}
	for _, o := range outcomes {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		call.Done(o)
	}
	got := l.wait(t, len(outcomes))
	for i, r := range got {
		if r.Name != "api" || r.Address != addr(1) || r.Outcome != outcomes[i] {
			t.Errorf("result %d = %+v, want api, %v, %v", i, r, addr(1), outcomes[i])
		}
	}
	time.Sleep(20 * time.Millisecond) // nothing more may arrive
	if n := len(l.all()); n != len(outcomes) {
		t.Errorf("%d results, want %d: Pick and PickKey must not publish", n, len(outcomes))
	}

	// Without WithBus, Done publishes nothing.
	call, err := New(c).PickCall()
	if err != nil {
		t.Fatal(err)
	}
	call.Done(Success)
	time.Sleep(20 * time.Millisecond)
	if n := len(l.all()); n != len(outcomes) {
		t.Errorf("a balancer without a bus published: %d results", n)
	}
}
