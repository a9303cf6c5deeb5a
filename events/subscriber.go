package events

import (
	"fmt"
	"reflect"
	"runtime"
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
	draining bool          // a drainer runs
	calling  bool          // the drainer is in deliver
	idle     chan struct{} // closed when the call in progress returns; made by the first caller to wait for it
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

// wait returns once the delivery in progress, if any, has returned; with
// stop, no delivery runs after it. Called from within a handler it returns
// at once: the delivery in progress may be the caller's own, or be waiting
// for the caller, and Go cannot tell which goroutine runs it.
func (s *subscriber) wait() {
	s.mu.Lock()
	if !s.calling {
		s.mu.Unlock()
		return
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	if inHandler() {
		return
	}
	<-idle
}

func (s *subscriber) drain() {
	defer s.bus.workers.Done()
	s.mu.Lock()
	for !s.stopped && len(s.queue) > 0 {
		v := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.calling = true
		s.mu.Unlock()
		handle(s, v)
		s.mu.Lock()
		s.calling = false
		if s.idle != nil {
			close(s.idle)
			s.idle = nil
		}
	}
	s.draining = false
	s.queue = nil
	s.mu.Unlock()
}

// handle runs s's handler with v, recovering a panic so that s lives on.
// It is the one frame through which every handler runs: inHandler looks for
// it on the caller's stack, so it stays a function of its own, never
// inlined.
//
//go:noinline
func handle(s *subscriber, v any) {
	defer func() {
		if r := recover(); r != nil {
			s.bus.log.Error("events: handler panicked",
				"topic", s.topic, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	s.deliver(v)
}

// handleEntry is the entry address of handle's code.
var handleEntry = runtime.FuncForPC(reflect.ValueOf(handle).Pointer()).Entry()

// inHandler reports whether the calling goroutine is running a handler, of
// any subscriber of any Bus: whether handle is on its stack. It is for the
// rare path only: an unsubscribe that finds a delivery in progress.
func inHandler() bool {
	var buf [64]uintptr
	pcs := buf[:]
	for {
		n := runtime.Callers(1, pcs)
		for _, pc := range pcs[:n] {
			// pc is a return address; pc-1 is within the calling
			// instruction, so within the function that made the call.
			if f := runtime.FuncForPC(pc - 1); f != nil && f.Entry() == handleEntry {
				return true
			}
		}
		if n < len(pcs) {
			return false // the whole stack was seen
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
}
