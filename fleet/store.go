package fleet

import (
	"context"
	"errors"
	"time"
)

// store is the key-value engine under the fleet. The verdict logic (the
// view, the group's loop, the writer) reaches the engine through it alone,
// so another engine would be one more implementation of it; NATS JetStream
// (natsStore) is the one there is.
//
// Keys are dot-separated tokens (keys.go); patterns may end in "*" (one
// token) or ">" (the rest).
type store interface {
	// bucket names the store in logs and errors.
	bucket() string
	// put writes value under key if the key's latest revision is still rev
	// (0: the key has never held anything), to be removed by the engine
	// ttl after (0: never). It returns the new revision, or errRevision.
	put(ctx context.Context, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error)
	// get returns the key's latest change, a removal included, or
	// errNoKey when it has none.
	get(ctx context.Context, key string) (*change, error)
	// remove removes key if its latest revision is rev (errRevision if
	// not).
	remove(ctx context.Context, key string, rev uint64) error
	// watch delivers the latest change of every key matching one of
	// patterns, then a nil change (the replay is complete), then every
	// change as it happens, until stop or until ctx ends.
	watch(ctx context.Context, patterns []string) (watch, error)
}

// watch is a running store.watch.
type watch interface {
	// changes delivers the changes; it is closed when the watch ends by
	// itself (the connection closed).
	changes() <-chan *change
	// stop ends the watch and waits until nothing more is delivered.
	stop()
}

// change is one key's new state: a value, or its removal.
type change struct {
	key   string
	value []byte // nil for a removal
	rev   uint64 // the engine's revision: it grows with every change of the store
	at    time.Time
	// removed says how the key lost its value ("deleted", "purged or
	// expired"); empty for a value. A removed value no longer counts.
	removed string
}

var (
	// errRevision: the key is no longer at the revision given.
	errRevision = errors.New("fleet: key changed meanwhile")
	// errNoKey: the key holds nothing.
	errNoKey = errors.New("fleet: no such key")
	// errTimeout: the engine did not answer in time (a loaded or
	// restarting server): worth trying again.
	errTimeout = errors.New("fleet: no answer in time")
)
