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
//     when many handlers are closures made by one function literal.
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
// # Concurrency
//
// All functions and methods are safe for concurrent use. Close must not be
// called from a handler: it waits for handlers to finish.
package events
