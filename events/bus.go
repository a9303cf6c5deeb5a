package events

import (
	"log/slog"
	"strconv"
	"sync"

	evbus "github.com/asaskevich/EventBus"
)

// DefaultQueueLimit is how many values a subscriber of a NewTopic topic may
// have queued before the oldest is dropped, unless WithQueueLimit says
// otherwise.
const DefaultQueueLimit = 1 << 16

// Bus routes values from publishers to subscribers. Create one with New.
type Bus struct {
	eb    evbus.Bus // routes a topic's values to its dispatcher
	log   *slog.Logger
	limit int

	mu     sync.Mutex // guards everything below; held across eb.Publish so topics see one order
	topics map[key]*topic
	nextID uint64
	closed bool

	workers sync.WaitGroup // mailbox drainers currently running
}

// topic is a bus's record of one Topic: its subscribers and, for a state
// topic, its retained value. The bus holds a record only while it has
// subscribers or a retained value, so a topic nobody follows costs nothing.
type topic struct {
	id     string // the topic's name on the underlying EventBus
	name   string
	latest any  // state topics only
	has    bool // latest is set
	subs   map[uint64]*subscriber
}

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger for recovered panics and dropped values.
// The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(b *Bus) {
		if l != nil {
			b.log = l
		}
	}
}

// WithQueueLimit sets how many values one subscriber of a NewTopic topic may
// have queued before the oldest is dropped. Values below 1 keep the default,
// DefaultQueueLimit.
func WithQueueLimit(n int) Option {
	return func(b *Bus) {
		if n > 0 {
			b.limit = n
		}
	}
}

// New returns an empty, open bus.
func New(opts ...Option) *Bus {
	b := &Bus{
		eb:     evbus.New(),
		log:    slog.New(slog.DiscardHandler),
		limit:  DefaultQueueLimit,
		topics: make(map[key]*topic),
	}
	for _, o := range opts {
		o(b)
	}
	return b
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
	if len(t.subs) > 0 {
		// The dispatcher runs synchronously under EventBus's lock; it only
		// queues, so it never blocks and never calls user code.
		b.eb.Publish(t.id, v)
	}
}

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
	if len(t.subs) == 0 {
		// One EventBus handler per topic, so EventBus's Unsubscribe, which
		// matches handlers by code pointer, always finds the right one.
		if err := b.eb.Subscribe(t.id, t.dispatch); err != nil {
			b.log.Error("events: subscribe", "topic", t.name, "err", err)
			return func() {}
		}
	}
	b.nextID++
	id := b.nextID
	s := &subscriber{bus: b, topic: t.name, deliver: deliver, state: state}
	t.subs[id] = s
	if t.has {
		s.push(t.latest)
	}
	var once sync.Once
	return func() {
		once.Do(func() { b.unsubscribe(k, id) })
		s.wait()
	}
}

func (b *Bus) unsubscribe(k key, id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	if t == nil {
		return
	}
	s := t.subs[id]
	if s == nil {
		return
	}
	delete(t.subs, id)
	s.stop()
	if len(t.subs) == 0 {
		if err := b.eb.Unsubscribe(t.id, t.dispatch); err != nil {
			b.log.Error("events: unsubscribe", "topic", t.name, "err", err)
		}
		if !t.has {
			delete(b.topics, k)
		}
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

// release drops k's retained value, and k's record once nobody follows it.
func (b *Bus) release(k key) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[k]
	if t == nil {
		return
	}
	t.latest, t.has = nil, false
	if len(t.subs) == 0 {
		delete(b.topics, k)
	}
}

// Len returns how many topics the bus holds: those with a subscriber or a
// retained value. A process whose upstreams come and go can watch it stay
// bounded.
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
	b.nextID++
	t := &topic{
		id:   "t" + strconv.FormatUint(b.nextID, 10),
		name: k.name,
		subs: make(map[uint64]*subscriber),
	}
	b.topics[k] = t
	return t
}

// dispatch queues v for every subscriber. EventBus calls it while the
// publisher holds b.mu.
func (t *topic) dispatch(v any) {
	for _, s := range t.subs {
		s.push(v)
	}
}
