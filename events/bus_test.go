package events_test

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
)

// recorder collects what a subscriber receives.
type recorder[T any] struct {
	mu   sync.Mutex
	got  []T
	more chan struct{} // signalled on every delivery
}

func newRecorder[T any]() *recorder[T] {
	return &recorder[T]{more: make(chan struct{}, 1)}
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	r.got = append(r.got, v)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder[T]) values() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitLen waits until at least n values arrived, failing the test after a deadline.
func (r *recorder[T]) waitLen(t *testing.T, n int) []T {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if got := r.values(); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("got %d values, want %d: %v", len(r.values()), n, r.values())
		}
	}
}

// settle gives asynchronous deliveries that should not happen a chance to
// show up: it publishes a marker on a separate topic and waits for it, after
// which every delivery queued before the marker has started.
func settle(t *testing.T, b *events.Bus) {
	t.Helper()
	marker := events.NewTopic[struct{}]("settle")
	done := make(chan struct{}, 1)
	unsub := events.Subscribe(b, marker, func(struct{}) {
		select {
		case done <- struct{}{}:
		default:
		}
	})
	defer unsub()
	events.Publish(b, marker, struct{}{})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("marker not delivered")
	}
	time.Sleep(10 * time.Millisecond) // unwanted deliveries have had a chance; absence is asserted by the caller
}

func TestDeliveryOrderUnderConcurrentPublishers(t *testing.T) {
	b := events.New()
	defer b.Close()
	type msg struct{ pub, seq int }
	topic := events.NewTopic[msg]("order")

	const subs, pubs, per = 3, 4, 500
	recs := make([]*recorder[msg], subs)
	for i := range recs {
		recs[i] = newRecorder[msg]()
		defer events.Subscribe(b, topic, recs[i].add)()
	}
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Go(func() {
			for s := range per {
				events.Publish(b, topic, msg{p, s})
			}
		})
	}
	wg.Wait()

	first := recs[0].waitLen(t, pubs*per)
	for i, r := range recs {
		got := r.waitLen(t, pubs*per)
		if len(got) != pubs*per {
			t.Fatalf("subscriber %d: got %d values, want %d", i, len(got), pubs*per)
		}
		next := make([]int, pubs)
		for _, m := range got {
			if m.seq != next[m.pub] {
				t.Fatalf("subscriber %d: publisher %d: got seq %d, want %d", i, m.pub, m.seq, next[m.pub])
			}
			next[m.pub]++
		}
		if !slices.Equal(got, first) {
			t.Errorf("subscriber %d saw another order than subscriber 0", i)
		}
	}
}

func TestUnsubscribeRemovesExactlyOneOfSameLiteral(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewTopic[int]("same-literal")

	const n = 4
	var counts [n]atomic.Int64
	var unsubs [n]func()
	all := newRecorder[int]()
	for i := range n {
		// Every handler is a closure of this one literal: EventBus's own
		// Unsubscribe cannot tell them apart.
		unsubs[i] = events.Subscribe(b, topic, func(v int) {
			counts[i].Add(1)
			all.add(v)
		})
	}
	events.Publish(b, topic, 1)
	all.waitLen(t, n)

	unsubs[2]()
	unsubs[2]() // idempotent
	events.Publish(b, topic, 2)
	all.waitLen(t, 2*n-1)
	settle(t, b)

	for i := range n {
		want := int64(2)
		if i == 2 {
			want = 1
		}
		if got := counts[i].Load(); got != want {
			t.Errorf("subscriber %d got %d values, want %d", i, got, want)
		}
	}
	for i := range n {
		unsubs[i]()
	}
}

func TestHandlerMayPublishAndSubscribe(t *testing.T) {
	b := events.New()
	defer b.Close()
	ping := events.NewTopic[int]("ping")
	pong := events.NewTopic[int]("pong")

	got := newRecorder[int]()
	var inner []func()
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range inner {
			u()
		}
	}()
	defer events.Subscribe(b, ping, func(v int) {
		// Subscribing and publishing from a handler must not deadlock.
		u := events.Subscribe(b, pong, got.add)
		mu.Lock()
		inner = append(inner, u)
		mu.Unlock()
		events.Publish(b, pong, v*10)
	})()

	events.Publish(b, ping, 1)
	if v := got.waitLen(t, 1); v[0] != 10 {
		t.Fatalf("got %v, want [10]", v)
	}
}

func TestPanickingHandlerIsRecoveredAndKeepsReceiving(t *testing.T) {
	var logs testutil.Buffer
	b := events.New(events.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer b.Close()
	topic := events.NewTopic[int]("panics")

	got := newRecorder[int]()
	defer events.Subscribe(b, topic, func(v int) {
		if v == 1 {
			panic("boom")
		}
		got.add(v)
	})()
	events.Publish(b, topic, 1)
	events.Publish(b, topic, 2)
	if v := got.waitLen(t, 1); v[0] != 2 {
		t.Fatalf("got %v, want [2]", v)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged; log: %q", logs.String())
	}
}

func TestLateSubscriberOfStateTopicGetsLatestFirst(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewStateTopic[string]("late")

	if _, ok := events.Latest(b, topic); ok {
		t.Fatal("Latest reports a value before any was published")
	}
	events.Publish(b, topic, "a")
	events.Publish(b, topic, "b")
	if v, ok := events.Latest(b, topic); !ok || v != "b" {
		t.Fatalf("Latest = %q, %v; want b, true", v, ok)
	}

	got := newRecorder[string]()
	defer events.Subscribe(b, topic, got.add)()
	if v := got.waitLen(t, 1); v[0] != "b" {
		t.Fatalf("late subscriber got %v first, want b", v)
	}
	events.Publish(b, topic, "c")
	if v := got.waitLen(t, 2); !slices.Equal(v, []string{"b", "c"}) {
		t.Fatalf("got %v, want [b c]", v)
	}
}

func TestEventTopicNeverReplays(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewTopic[string]("events")

	early := newRecorder[string]()
	unsubEarly := events.Subscribe(b, topic, early.add)
	events.Publish(b, topic, "old")
	early.waitLen(t, 1)
	if _, ok := events.Latest(b, topic); ok {
		t.Error("an event topic reports a latest value")
	}

	late := newRecorder[string]()
	defer events.Subscribe(b, topic, late.add)()
	events.Publish(b, topic, "new")
	late.waitLen(t, 1)
	settle(t, b)
	if v := late.values(); !slices.Equal(v, []string{"new"}) {
		t.Fatalf("late subscriber got %v, want [new]: an old event was replayed", v)
	}
	unsubEarly()
}

func TestTopicsAreReleased(t *testing.T) {
	b := events.New()
	defer b.Close()

	// Event topics nobody follows leave nothing behind.
	for i := range 1000 {
		events.Publish(b, events.NewTopic[int]("e"+strconv.Itoa(i)), i)
	}
	if n := b.Len(); n != 0 {
		t.Fatalf("after publishing on 1000 unfollowed event topics the bus holds %d topics, want 0", n)
	}
	// A followed event topic is held while followed.
	unsub := events.Subscribe(b, events.NewTopic[int]("followed"), func(int) {})
	if n := b.Len(); n != 1 {
		t.Fatalf("bus holds %d topics with one subscription, want 1", n)
	}
	unsub()
	if n := b.Len(); n != 0 {
		t.Fatalf("bus holds %d topics after the only subscriber left, want 0", n)
	}

	// State topics retain until released.
	for i := range 1000 {
		events.Publish(b, events.NewStateTopic[int]("s"+strconv.Itoa(i)), i)
	}
	if n := b.Len(); n != 1000 {
		t.Fatalf("bus holds %d state topics, want 1000", n)
	}
	for i := range 1000 {
		events.Release(b, events.NewStateTopic[int]("s"+strconv.Itoa(i)))
	}
	if n := b.Len(); n != 0 {
		t.Fatalf("bus holds %d topics after releasing them all, want 0", n)
	}

	// Releasing a followed state topic drops its value, not its subscriber.
	topic := events.NewStateTopic[string]("kept")
	got := newRecorder[string]()
	defer events.Subscribe(b, topic, got.add)()
	events.Publish(b, topic, "a")
	got.waitLen(t, 1)
	events.Release(b, topic)
	if _, ok := events.Latest(b, topic); ok {
		t.Error("a released topic still retains its value")
	}
	events.Publish(b, topic, "b")
	if v := got.waitLen(t, 2); !slices.Equal(v, []string{"a", "b"}) {
		t.Fatalf("subscriber of a released topic got %v, want [a b]", v)
	}
	late := newRecorder[string]()
	defer events.Subscribe(b, topic, late.add)()
	if v := late.waitLen(t, 1); v[0] != "b" {
		t.Fatalf("late subscriber got %v, want [b]", v)
	}
}

func TestSlowSubscriberStallsNobody(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewTopic[int]("slow")

	release := make(chan struct{})
	slow := newRecorder[int]()
	defer events.Subscribe(b, topic, func(v int) {
		<-release
		slow.add(v)
	})()
	fast := newRecorder[int]()
	defer events.Subscribe(b, topic, fast.add)()

	const n = 1000
	published := make(chan struct{})
	go func() {
		for i := range n {
			events.Publish(b, topic, i)
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked behind a slow handler")
	}
	fast.waitLen(t, n)
	close(release)
	got := slow.waitLen(t, n)
	for i, v := range got {
		if v != i {
			t.Fatalf("slow subscriber: value %d is %d", i, v)
		}
	}
}

// fallBehind subscribes a recorder to topic whose handler blocks on the
// first value, 0, while 1..n are published, then lets it go on.
func fallBehind(b *events.Bus, topic events.Topic[int], n int) *recorder[int] {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	got := newRecorder[int]()
	events.Subscribe(b, topic, func(v int) {
		if v == 0 {
			entered <- struct{}{}
			<-release
		}
		got.add(v)
	})
	events.Publish(b, topic, 0)
	<-entered
	for i := 1; i <= n; i++ {
		events.Publish(b, topic, i)
	}
	close(release)
	return got
}

func TestStateTopicCoalescesToNewest(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewStateTopic[int]("state")

	got := fallBehind(b, topic, 100)
	got.waitLen(t, 2)
	settle(t, b)
	if v := got.values(); !slices.Equal(v, []int{0, 100}) {
		t.Fatalf("got %v, want [0 100]", v)
	}
}

func TestQueueLimitDropsOldest(t *testing.T) {
	var logs testutil.Buffer
	b := events.New(events.WithQueueLimit(10), events.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer b.Close()
	topic := events.NewTopic[int]("limit")

	got := fallBehind(b, topic, 100)
	got.waitLen(t, 11)
	settle(t, b)
	want := []int{0, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100}
	if v := got.values(); !slices.Equal(v, want) {
		t.Fatalf("got %v, want %v", v, want)
	}
	if !strings.Contains(logs.String(), "fell behind") {
		t.Errorf("drop not logged; log: %q", logs.String())
	}
}

func TestCloseDrainsAndStops(t *testing.T) {
	b := events.New()
	topic := events.NewTopic[int]("close")

	var delivered atomic.Int64
	events.Subscribe(b, topic, func(int) {
		time.Sleep(100 * time.Microsecond)
		delivered.Add(1)
	})
	const n = 200
	for i := range n {
		events.Publish(b, topic, i)
	}
	b.Close()
	if got := delivered.Load(); got != n {
		t.Fatalf("Close returned with %d of %d values delivered", got, n)
	}
	events.Publish(b, topic, n) // does nothing
	events.Subscribe(b, topic, func(int) { t.Error("delivery after Close") })()
	b.Close() // idempotent
	if got := delivered.Load(); got != n {
		t.Fatalf("delivered %d after Close, want %d", got, n)
	}
}

func TestCloseWhilePublishing(t *testing.T) {
	b := events.New()
	topic := events.NewTopic[int]("close-race")
	var delivered, published atomic.Int64
	events.Subscribe(b, topic, func(int) { delivered.Add(1) })

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				events.Publish(b, topic, i)
				published.Add(1)
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	b.Close()
	after := delivered.Load()
	close(stop)
	wg.Wait()
	if got := delivered.Load(); got != after {
		t.Fatalf("%d deliveries after Close returned", got-after)
	}
	if after == 0 || after > published.Load() {
		t.Fatalf("delivered %d of %d published", after, published.Load())
	}
}

func TestTopicsOfOneNameButDifferentTypesAreDistinct(t *testing.T) {
	b := events.New()
	defer b.Close()
	ints := newRecorder[int]()
	strs := newRecorder[string]()
	defer events.Subscribe(b, events.NewTopic[int]("x"), ints.add)()
	defer events.Subscribe(b, events.NewTopic[string]("x"), strs.add)()

	events.Publish(b, events.NewTopic[string]("x"), "s")
	events.Publish(b, events.NewTopic[int]("x"), 7)
	ints.waitLen(t, 1)
	strs.waitLen(t, 1)
	settle(t, b)
	if v := ints.values(); !slices.Equal(v, []int{7}) {
		t.Errorf("int topic got %v", v)
	}
	if v := strs.values(); !slices.Equal(v, []string{"s"}) {
		t.Errorf("string topic got %v", v)
	}
}

func TestUnsubscribeFromOwnHandler(t *testing.T) {
	b := events.New()
	defer b.Close()
	topic := events.NewTopic[int]("self")

	var count atomic.Int64
	var unsub func()
	ready := make(chan struct{})
	unsub = events.Subscribe(b, topic, func(int) {
		<-ready
		count.Add(1)
		unsub()
	})
	close(ready)
	for i := range 10 {
		events.Publish(b, topic, i)
	}
	settle(t, b)
	if got := count.Load(); got != 1 {
		t.Fatalf("handler ran %d times after unsubscribing itself, want 1", got)
	}
}

func TestNilInputsDoNothing(t *testing.T) {
	var nilBus *events.Bus
	topic := events.NewTopic[*int]("nil")
	events.Publish(nilBus, topic, nil)
	events.Subscribe(nilBus, topic, func(*int) {})()
	if _, ok := events.Latest(nilBus, topic); ok {
		t.Error("nil bus has a latest value")
	}

	b := events.New()
	defer b.Close()
	events.Subscribe(b, topic, nil)() // nil handler: nothing subscribed
	got := newRecorder[*int]()
	defer events.Subscribe(b, topic, got.add)()
	events.Publish(b, topic, nil) // a nil value of the topic's type is a value
	if v := got.waitLen(t, 1); v[0] != nil {
		t.Fatalf("got %v, want [nil]", v)
	}
}
