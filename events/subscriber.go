package events

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// subscriber is one subscription's mailbox. A drainer goroutine runs only
// while the mailbox holds values; at most one runs at a time, so deliveries
// happen one after another in queue order.
type subscriber struct {
	bus     *Bus
	topic   string
	deliver func(any)
	state   bool // keep only the newest pending value

	mu       sync.Mutex
	queue    []any
	draining bool
	stopped  bool
	dropping bool // a drop has been logged since the queue was last below its limit
}

// push queues v and makes sure a drainer runs. The caller holds bus.mu, which
// orders this against Close's wait.
func (s *subscriber) push(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	switch {
	case s.state:
		clear(s.queue)
		s.queue = append(s.queue[:0], v)
	case len(s.queue) >= s.bus.limit:
		if !s.dropping {
			s.dropping = true
			s.bus.log.Warn("events: subscriber fell behind; dropping its oldest values",
				"topic", s.topic, "limit", s.bus.limit)
		}
		s.queue[0] = nil
		s.queue = append(s.queue[1:], v)
	default:
		s.dropping = false
		s.queue = append(s.queue, v)
	}
	if !s.draining {
		s.draining = true
		s.bus.workers.Add(1)
		go s.drain()
	}
}

// stop discards what is queued; no delivery starts after it returns.
func (s *subscriber) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	clear(s.queue)
	s.queue = nil
}

func (s *subscriber) drain() {
	defer s.bus.workers.Done()
	for {
		s.mu.Lock()
		if s.stopped || len(s.queue) == 0 {
			s.draining = false
			s.queue = nil
			s.mu.Unlock()
			return
		}
		v := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.call(v)
	}
}

// call runs the handler, recovering a panic so that the subscriber lives on.
func (s *subscriber) call(v any) {
	defer func() {
		if r := recover(); r != nil {
			s.bus.log.Error("events: handler panicked",
				"topic", s.topic, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	s.deliver(v)
}
