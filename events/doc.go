// Package events is a typed, asynchronous publish/subscribe bus.
//
// It wraps github.com/asaskevich/EventBus so that its sharp edges never reach
// users:
//
//   - Topics are typed (Topic[T]): publishing a value of the wrong type is a
//     compile error, not a panic inside reflect.
//   - Delivery is asynchronous and in publish order per subscriber. Each
//     subscriber has its own mailbox, drained by a goroutine that runs only
//     while the mailbox is not empty, so a slow handler delays only itself.
//   - A state topic (NewStateTopic) retains its latest value and hands it to
//     a new subscriber first; an event topic (NewTopic) never replays: a
//     subscriber gets only what is published after it subscribed. Release
//     drops a topic's retained value, and Len tells how many topics a bus
//     holds, so that one whose upstreams come and go stays bounded.
//   - A handler that panics is recovered and logged; its subscriber keeps
//     receiving.
//   - The function returned by Subscribe removes exactly that subscriber, even
//     when many handlers are closures made by one function literal, and
//     waits: once it returns, the handler is not running and never runs
//     again (see Unsubscribing for the one exception). A consumer needs no
//     guard of its own around its handler.
//   - Handlers may publish, subscribe and unsubscribe without deadlocking.
//   - Close delivers what is queued, then stops; it is idempotent.
//
// # Falling behind
//
// A subscriber of a topic made by NewTopic receives every value. Its mailbox
// holds at most the bus's queue limit (WithQueueLimit; default 65536); when a
// handler falls that far behind, the oldest queued value is dropped and a
// warning is logged. A subscriber of a state topic (NewStateTopic) holds at
// most one pending value: when it falls behind it skips to the newest value,
// which is what a consumer of state (such as a full address set) wants.
//
// # Unsubscribing
//
// The function returned by Subscribe discards what is queued for the
// subscriber, then waits for the delivery in progress, if any: when it
// returns, the handler has returned and will not be called again, and what
// the handler wrote is visible to the caller.
//
// Called from within a handler, it does not wait: it returns at once, and a
// delivery already in progress to the subscription it removes may still
// finish. For a handler that unsubscribes itself, that delivery is the
// caller's own, and waiting for it would never end. For a handler that
// unsubscribes another subscription, the other's handler may be waiting
// for this one (two handlers that unsubscribe each other at the same time
// would each wait for the other), and Go gives no cheap way to tell which
// goroutine runs which handler. So two handlers that unsubscribe each other
// both return at once; neither is called again once both have returned.
// This holds for handlers of any Bus.
//
// Because it waits, unsubscribe must not be called while holding something
// the handler waits for (a lock it takes, a channel it receives from), and a
// handler must not wait for another goroutine that unsubscribes it.
//
// # Concurrency
//
// All functions and methods are safe for concurrent use. Close must not be
// called from a handler: it waits for handlers to finish.
package events
