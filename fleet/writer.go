package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// opTimeout bounds one store operation.
const opTimeout = 2 * time.Second

// writer writes one group's values: claims, verdicts, and the deletions
// of giving an address up. It writes newest first and coalesced: while a
// write is in flight, later writes of one key replace each other and only
// the last is made.
//
// Each key has one writer: the member whose id ends it. Values are written
// by compare-and-set on the key's revision: a write succeeds only if the
// key is still at the revision this writer last wrote or read. When it is
// not, the writer reads the key: its own earlier write (an answer lost, a
// previous session of this Run), a removal, or a value not of this member
// (written by hand) is simply overwritten; a value of another instance with
// this member's id is a conflict (Stats.Conflicts): an older instance's is
// overwritten, a newer one's makes this one stop (ErrMemberConflict).
type writer struct {
	f     *Fleet
	name  string
	st    store
	epoch int64

	mu      sync.Mutex
	pending map[string]pendingOp // by key
	order   []string             // keys of pending in the order they were first queued
	wake    chan struct{}        // buffered 1

	revs map[string]uint64 // run's alone: the revision of each key this writer last wrote or read
}

// pendingOp is a write or a removal waiting for the writer.
type pendingOp struct {
	rec    record
	ttl    time.Duration
	remove bool
}

func newWriter(f *Fleet, name string, st store, epoch int64) *writer {
	return &writer{
		f: f, name: name, st: st, epoch: epoch,
		pending: make(map[string]pendingOp),
		wake:    make(chan struct{}, 1),
		revs:    make(map[string]uint64),
	}
}

// put queues rec to be written under key; the store removes it ttl after.
func (w *writer) put(key string, rec record, ttl time.Duration) {
	w.queue(key, pendingOp{rec: rec, ttl: ttl})
}

// remove queues the removal of key.
func (w *writer) remove(key string) { w.queue(key, pendingOp{remove: true}) }

func (w *writer) queue(key string, op pendingOp) {
	w.mu.Lock()
	if _, ok := w.pending[key]; !ok {
		w.order = append(w.order, key)
	}
	w.pending[key] = op
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Retries of writes that time out: a loaded or restarting server stalls
// for a moment, and the session should outlive that.
const (
	maxTimeouts  = 3 // in a row, then the write fails
	retryTimeout = 100 * time.Millisecond
)

// run writes what is queued until ctx ends (nil) or a write fails (the
// error). A write that times out is tried again after a pause, unless a
// newer one of its key was queued meanwhile; maxTimeouts in a row fail.
func (w *writer) run(ctx context.Context) error {
	timeouts := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
		w.mu.Lock()
		pending, order := w.pending, w.order
		w.pending, w.order = make(map[string]pendingOp), nil
		w.mu.Unlock()
		for i, key := range order {
			op := pending[key]
			var err error
			if op.remove {
				err = w.removeKey(ctx, key)
			} else {
				err = w.write(ctx, key, op.rec, op.ttl)
			}
			if err == nil {
				timeouts = 0
				continue
			}
			if !errors.Is(err, errTimeout) || timeouts+1 >= maxTimeouts {
				return ctxOr(ctx, err)
			}
			timeouts++
			w.requeue(order[i:], pending)
			t := time.NewTimer(retryTimeout << (timeouts - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			break
		}
	}
}

// requeue queues again the operations of keys that nothing newer
// replaced meanwhile.
func (w *writer) requeue(keys []string, ops map[string]pendingOp) {
	w.mu.Lock()
	var again []string
	for _, key := range keys {
		if _, newer := w.pending[key]; !newer {
			w.pending[key] = ops[key]
			again = append(again, key)
		}
	}
	w.order = append(again, w.order...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write writes rec under key by compare-and-set (see writer).
func (w *writer) write(ctx context.Context, key string, rec record, ttl time.Duration) error {
	rec.V, rec.Member, rec.Zone, rec.Name, rec.Epoch = FormatVersion, w.f.cfg.Member, w.f.cfg.Zone, w.name, w.epoch
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	for range 3 {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		next, err := w.st.put(octx, key, data, w.revs[key], ttl)
		cancel()
		if err == nil {
			w.revs[key] = next
			w.f.stats.writes.Add(1)
			return nil
		}
		if !errors.Is(err, errRevision) {
			return fmt.Errorf("writing to %s: %w", w.st.bucket(), err)
		}
		if err := w.reread(ctx, key); err != nil {
			return err
		}
	}
	return fmt.Errorf("writing to %s: key %s keeps changing", w.st.bucket(), key)
}

// reread reads key after a write found it at another revision, and
// decides whether this writer may overwrite it (nil) or must stop.
func (w *writer) reread(ctx context.Context, key string) error {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	c, err := w.st.get(octx, key)
	cancel()
	switch {
	case errors.Is(err, errNoKey):
		delete(w.revs, key)
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", w.st.bucket(), err)
	}
	w.revs[key] = c.rev
	if c.removed != "" {
		return nil
	}
	cur, err := decodeRecord(c.value)
	switch {
	case err != nil || cur.Member != w.f.cfg.Member:
		// Not this member's: written by hand. Overwritten.
		w.f.stats.ignored.Add(1)
		w.f.log.Warn("fleet: a value not written by this member was found under its key; overwriting it",
			"name", w.name, "key", key, "member", w.f.cfg.Member)
	case cur.Epoch == w.epoch:
		// This instance's own: an answer lost, or an earlier session.
	case cur.Epoch > w.epoch && time.Unix(0, cur.Epoch).Before(time.Now().Add(maxSkew)):
		w.f.stats.conflicts.Add(1)
		return fmt.Errorf("%w: %q's value on %s was written by an instance started at %s, after this one (%s)",
			ErrMemberConflict, cur.Member, cur.Address, time.Unix(0, cur.Epoch).UTC().Format(time.RFC3339Nano),
			time.Unix(0, w.epoch).UTC().Format(time.RFC3339Nano))
	case cur.Epoch < w.epoch:
		// A previous instance's: this one replaces it.
		w.f.stats.conflicts.Add(1)
	default:
		// An epoch too far in the future to be an instance's.
		w.f.stats.ignored.Add(1)
		w.f.log.Warn("fleet: a value claiming an instance started in the future was found under this member's key; overwriting it",
			"name", w.name, "key", key, "epoch", cur.Epoch)
	}
	return nil
}

// removeKey removes key if this writer wrote it and it still holds that.
func (w *writer) removeKey(ctx context.Context, key string) error {
	rev, ok := w.revs[key]
	if !ok {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	err := w.st.remove(octx, key, rev)
	cancel()
	switch {
	case err == nil, errors.Is(err, errRevision):
		// Removed, or written since by someone else: theirs to keep.
		delete(w.revs, key)
		return nil
	}
	return fmt.Errorf("removing from %s: %w", w.st.bucket(), err)
}

// leave removes every key this writer wrote, so that the others take its
// places at once. It is bounded by opTimeout, not by a context: it runs
// as Run ends.
func (w *writer) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	for key := range w.revs {
		if err := w.removeKey(ctx, key); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// ctxOr returns nil when ctx has ended (the error is the end's doing), else
// err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
