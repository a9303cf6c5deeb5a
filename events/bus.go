package events

import (
	"log/slog"
	"sync"

	evbus "github.com/asaskevich/EventBus"
)

// DefaultQueueLimit is how many values a subscriber of a NewTopic topic may
// have queued before the oldest is dropped, unless WithQueueLimit says
// otherwise.
const DefaultQueueLimit = 1 << 16

// Bus routes values from publishers to subscribers. Create one with New.
type Bus struct {
	log   *slog.Logger
	limit int

	mu     sync.Mutex // guards everything below; held across a topic's routing so that its subscribers see one order
	topics map[key]*topic
	closed bool

	workers sync.WaitGroup // mailbox drainers currently running
}

// topic is a bus's record of one Topic: its subscribers and, for a state
// topic, its retained value. The bus holds a record only while it has
// subscribers or a retained value, so a topic nobody follows costs nothing.
type topic struct {
	name   string
	latest any  // state topics only
	has    bool // latest is set
	subs   map[*subscriber]struct{}

	// eb routes the topic's values to dispatch while the topic has
	// subscribers; nil while it has none. Each followed topic has an
	// EventBus of its own, holding one handler on one route: EventBus's
	// handler map never forgets a route, so it must go with the topic, and
	// EventBus's Unsubscribe, which matches handlers by code pointer, is
	// never needed.
	eb evbus.Bus
}

// Option configures a Bus; New takes any number of them.
type Option func(*options)

// options are what Options set; New fills in the defaults.
type options struct {
	log   *slog.Logger // nil: discard
	limit int          // < 1: DefaultQueueLimit
}

// WithLogger sets the logger for recovered panics and dropped values.
// The default, also for a nil l, discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithQueueLimit sets how many values one subscriber of a NewTopic topic may
// have queued before the oldest is dropped. Values below 1 keep the default,
// DefaultQueueLimit.
func WithQueueLimit(n int) Option {
	return func(o *options) { o.limit = n }
}

// New returns an empty, open bus.
func New(opts ...Option) *Bus {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.limit < 1 {
		o.limit = DefaultQueueLimit
	}
	return &Bus{log: o.log, limit: o.limit, topics: make(map[key]*topic)}
}

// Close stops the bus: values already queued are delivered, then Close
// returns. Publish and Subscribe after Close do nothing. Close is
// idempotent; it must not be called from a handler.
func (b *Bus) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.workers.Wait()
}

func (b *Bus) publish(k key, state bool, v any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	t := b.topics[k]
	if t == nil {
		if !state {
			return // an event topic without subscribers: nobody to tell, nothing to keep
		}
		t = b.newTopic(k)
	}
	if state {
		t.latest, t.has = v, true
	}
	if t.eb != nil {
		// The dispatcher runs synchronously under EventBus's lock; it only
		// queues, so it never blocks and never calls user code.
		t.eb.Publish(t.name, v)
	}
}

// subscribe adds a subscriber that hands k's values to deliver, and returns
// the function that removes it and waits for it (see subscriber.wait).
func (b *Bus) subscribe(k key, state bool, deliver func(any)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return func() {}
	}
	t := b.topics[k]
	if t == nil {
		t = b.newTopic(k)
	}
	if t.eb == nil {
		eb := evbus.New()
		if err := eb.Subscribe(t.name, t.dispatch); err != nil { // only for a handler that is not a func
			b.log.Error("events: subscribe", "topic", t.name, "err", err)
			b.drop(k, t)
			return func() {}
		}
		t.eb = eb
	}
	s := &subscriber{bus: b, topic: t.name, deliver: deliver, state: state}
	t.subs[s] = struct{}{}
	if t.has {
		s.push(t.latest)
	}
	return func() {
		b.unsubscribe(k, s)
		s.wait()
	}
}

// unsubscribe removes s from k and stops it. It is idempotent.
func (b *Bus) unsubscribe(k key, s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	if t == nil {
		return
	}
	if _, ok := t.subs[s]; !ok {
		return
	}
	delete(t.subs, s)
	s.stop()
	b.drop(k, t)
}

// release drops k's retained value, and k's record once nobody follows it.
func (b *Bus) release(k key) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	if t == nil {
		return
	}
	t.latest, t.has = nil, false
	b.drop(k, t)
}

// drop lets go of what t holds for nobody: its route once it has no
// subscriber, and the record itself once it retains no value either. The
// caller holds b.mu.
func (b *Bus) drop(k key, t *topic) {
	if len(t.subs) > 0 {
		return
	}
	t.eb = nil
	if !t.has {
		delete(b.topics, k)
	}
}

// followed reports whether event topic k has a subscriber now. A Publish
// that finds none returns without building the value it would deliver; one
// racing a Subscribe is ordered as if it came first.
func (b *Bus) followed(k key) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	return t != nil && len(t.subs) > 0
}

// Len returns how many topics the bus holds: those with a subscriber or a
// retained value. Everything the bus keeps for a topic, its route on the
// wrapped EventBus included, belongs to one of these, and goes when the
// topic has neither; so a process whose upstreams come and go can watch Len
// to see the bus stay bounded, and fall to 0 once they have all gone.
func (b *Bus) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.topics)
}

func (b *Bus) latest(k key) (any, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	if t == nil {
		return nil, false
	}
	return t.latest, t.has
}

// newTopic records k; the caller holds b.mu.
func (b *Bus) newTopic(k key) *topic {
	t := &topic{name: k.name, subs: make(map[*subscriber]struct{})}
	b.topics[k] = t
	return t
}

// dispatch queues v for every subscriber. EventBus calls it while the
// publisher holds b.mu.
func (t *topic) dispatch(v any) {
	for s := range t.subs {
		s.push(v)
	}
}
