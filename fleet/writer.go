package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// opTimeout bounds one key-value operation.
const opTimeout = 2 * time.Second

// writer writes one group's registration and verdicts, newest first and
// coalesced: while a write is in flight, later verdicts on one address
// replace each other and only the last is written.
//
// Verdicts are written by compare-and-set on the key's revision: a write
// succeeds only if the key is still at the revision this writer last wrote
// or read. When it is not, someone else wrote the key, which only another
// instance with this member's id (or a hand) does: if that value's epoch is
// newer, this instance is the stale one and stops (ErrMemberConflict);
// otherwise it overwrites it. So a stale instance never overwrites a newer
// one, and readers, which keep the highest (Epoch, Seq) they have seen per
// key, never go back to an older value either.
type writer struct {
	f        *Fleet
	name     string
	members  jetstream.KeyValue
	verdicts jetstream.KeyValue

	mu       sync.Mutex
	pending  map[string]verdictRecord // by key
	order    []string                 // keys of pending in the order they were first queued
	register bool                     // the registration is due
	wake     chan struct{}

	revs map[string]uint64 // run's alone: the revision of each key this writer last wrote or read
}

func newWriter(f *Fleet, name string, members, verdicts jetstream.KeyValue) *writer {
	return &writer{
		f: f, name: name, members: members, verdicts: verdicts,
		pending: make(map[string]verdictRecord),
		wake:    make(chan struct{}, 1),
		revs:    make(map[string]uint64),
	}
}

// put queues rec to be written under key.
func (w *writer) put(key string, rec verdictRecord) {
	w.mu.Lock()
	if _, ok := w.pending[key]; !ok {
		w.order = append(w.order, key)
	}
	w.pending[key] = rec
	w.mu.Unlock()
	w.poke()
}

// refresh queues the registration.
func (w *writer) refresh() {
	w.mu.Lock()
	w.register = true
	w.mu.Unlock()
	w.poke()
}

func (w *writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes what is queued until ctx ends (nil) or a write fails (the
// error).
func (w *writer) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
		w.mu.Lock()
		register, pending, order := w.register, w.pending, w.order
		w.register, w.pending, w.order = false, make(map[string]verdictRecord), nil
		w.mu.Unlock()
		if register {
			if err := w.writeRegistration(ctx); err != nil {
				return err
			}
		}
		for _, key := range order {
			if err := w.writeVerdict(ctx, key, pending[key]); err != nil {
				return err
			}
		}
	}
}

// writeRegistration puts this member's registration.
func (w *writer) writeRegistration(ctx context.Context) error {
	data, err := json.Marshal(memberRecord{
		V: FormatVersion, Member: w.f.cfg.Member, Name: w.name,
		Epoch: w.f.epoch.Load(), TTL: w.f.cfg.TTL.Milliseconds(),
	})
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := w.members.Put(octx, memberKey(w.name, w.f.cfg.Member), data); err != nil {
		return ctxOr(ctx, fmt.Errorf("registering in %s: %w", w.members.Bucket(), err))
	}
	return nil
}

// writeVerdict writes rec under key by compare-and-set (see writer).
func (w *writer) writeVerdict(ctx context.Context, key string, rec verdictRecord) error {
	epoch := w.f.epoch.Load()
	for range 3 {
		rec.V, rec.Epoch, rec.Seq = FormatVersion, epoch, w.f.seq.Add(1)
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		rev, known := w.revs[key]
		var next uint64
		if known {
			next, err = w.verdicts.Update(octx, key, data, rev)
		} else {
			next, err = w.verdicts.Create(octx, key, data)
		}
		if err == nil {
			cancel()
			w.revs[key] = next
			w.f.stats.writes.Add(1)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			cancel()
			return ctxOr(ctx, fmt.Errorf("writing a verdict to %s: %w", w.verdicts.Bucket(), err))
		}
		// Someone else wrote the key: see who.
		w.f.stats.conflicts.Add(1)
		e, err := w.verdicts.Get(octx, key)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			delete(w.revs, key)
			continue
		case err != nil:
			return ctxOr(ctx, fmt.Errorf("reading a verdict of %s: %w", w.verdicts.Bucket(), err))
		}
		if cur, _, err := decodeVerdict(e.Value()); err == nil && cur.Epoch > epoch {
			return fmt.Errorf("%w: %q's verdict on %s was written by an instance started at %s, after this one (%s)",
				ErrMemberConflict, cur.Member, cur.Address,
				time.Unix(0, cur.Epoch).UTC().Format(time.RFC3339Nano), time.Unix(0, epoch).UTC().Format(time.RFC3339Nano))
		}
		w.revs[key] = e.Revision()
	}
	return fmt.Errorf("writing a verdict to %s: key %s keeps changing", w.verdicts.Bucket(), key)
}

// leave deletes this member's registration, so that the others take over
// its addresses at once. It is bounded by opTimeout, not by ctx.
func (w *writer) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return w.members.Delete(ctx, memberKey(w.name, w.f.cfg.Member))
}

// ctxOr returns nil when ctx has ended (the error is the end's doing), else
// err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
