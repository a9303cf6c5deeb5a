package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// formatKey is the bucket metadata key holding FormatVersion.
const formatKey = "vigil.fleet.format"

// Retention: a value carries its own TTL (twice its window, at least a
// second: natsStore.put), after which the server removes it and tells the
// watchers; bucketMaxAge removes what carries none (written by hand).
// Readers judge freshness by themselves; these only bound the bucket's
// size and tell readers early that a value is gone.
const (
	bucketMaxAge = 10 * time.Minute
	// markerTTL is how long the server keeps the marker of a value it
	// removed by TTL; it also enables per-value TTLs.
	markerTTL = time.Minute
)

// bucketName returns the name of the fleet's bucket: base, then the
// format, so that members of two formats never read each other's values.
func bucketName(base string) string { return base + "-verdicts-v" + strconv.Itoa(FormatVersion) }

// natsStore is a store on a JetStream key-value bucket.
type natsStore struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream: get reads removals too
	prefix string           // the subject prefix of the bucket's keys: "$KV.<bucket>."
}

// kvOperationHeader is the header of a key-value removal's marker ("DEL",
// "PURGE").
const kvOperationHeader = "KV-Operation"

// openStore binds to the bucket name, creating it when missing, and
// checks its format.
func openStore(ctx context.Context, nc *nats.Conn, name string) (*natsStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &natsStore{nc: nc, js: js, prefix: "$KV." + name + "."}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, bucketConfig(name))
		if errors.Is(err, jetstream.ErrBucketExists) { // made meanwhile by another member
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, s.failed(fmt.Errorf("bucket %s: %w", name, err))
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, s.failed(fmt.Errorf("bucket %s: %w", name, err))
	}
	if err := checkFormat(name, st.Metadata()); err != nil {
		return nil, err
	}
	if st.LimitMarkerTTL() <= 0 {
		return nil, fmt.Errorf("%w: bucket %s does not allow per-value TTLs (LimitMarkerTTL is not set)", ErrIncompatible, name)
	}
	stream, err := js.Stream(ctx, "KV_"+name)
	if err != nil {
		return nil, s.failed(fmt.Errorf("bucket %s: %w", name, err))
	}
	s.kv, s.stream = kv, stream
	return s, nil
}

// bucketConfig returns the configuration of the bucket this package
// creates.
func bucketConfig(name string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    "vigil fleet: shared health verdicts",
		History:        1,
		TTL:            bucketMaxAge,
		LimitMarkerTTL: markerTTL,
		Metadata:       map[string]string{formatKey: strconv.Itoa(FormatVersion)},
	}
}

// checkFormat refuses a bucket whose metadata says another format.
func checkFormat(name string, meta map[string]string) error {
	v, ok := meta[formatKey]
	if !ok {
		return fmt.Errorf("%w: bucket %s has no %s metadata: it is not a vigil fleet bucket", ErrIncompatible, name, formatKey)
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 1:
		return fmt.Errorf("%w: bucket %s: format %q is not a version", ErrIncompatible, name, v)
	case n > FormatVersion:
		return fmt.Errorf("%w: bucket %s is in format %d, written by a newer vigil; this one reads format %d (upgrade it, or use another Bucket)",
			ErrIncompatible, name, n, FormatVersion)
	case n < FormatVersion:
		return fmt.Errorf("%w: bucket %s is in format %d, written by an older vigil; this one reads format %d", ErrIncompatible, name, n, FormatVersion)
	}
	return nil
}

func (s *natsStore) bucket() string { return s.kv.Bucket() }

func (s *natsStore) put(ctx context.Context, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	m := nats.NewMsg(s.prefix + key)
	m.Data = value
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if ttl > 0 {
		// The server counts whole seconds, at least one.
		opts = append(opts, jetstream.WithMsgTTL(max(ttl.Round(time.Second), time.Second)))
	}
	ack, err := s.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		if wrongRevision(err) {
			return 0, errRevision
		}
		return 0, s.failed(err)
	}
	return ack.Sequence, nil
}

func (s *natsStore) get(ctx context.Context, key string) (*change, error) {
	// The stream's last message on the key, a removal's marker included:
	// KeyValue.Get hides a marker and its revision.
	m, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, errNoKey
	case err != nil:
		return nil, s.failed(err)
	}
	c := &change{key: key, rev: m.Sequence, at: m.Time}
	switch {
	case m.Header.Get(kvOperationHeader) == "DEL" || m.Header.Get(jetstream.MarkerReasonHeader) == "Remove":
		c.removed = "deleted"
	case m.Header.Get(kvOperationHeader) != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "":
		c.removed = "purged or expired"
	default:
		c.value = m.Data
	}
	return c, nil
}

func (s *natsStore) remove(ctx context.Context, key string, rev uint64) error {
	err := s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || wrongRevision(err):
		return errRevision
	}
	return s.failed(err)
}

func (s *natsStore) watch(ctx context.Context, patterns []string) (watch, error) {
	w, err := s.kv.WatchFiltered(ctx, patterns)
	if err != nil {
		return nil, s.failed(err)
	}
	nw := &natsWatch{w: w, out: make(chan *change), quit: make(chan struct{}), done: make(chan struct{})}
	go nw.run()
	return nw, nil
}

// failed returns err, marked ErrDenied when the connection's last error
// is a permission violation (the server drops what a client may not
// publish and says so on the side, so the operation itself only times
// out), else errTimeout when it timed out.
func (s *natsStore) failed(err error) error {
	if last := s.nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w: %w (the server said: %w)", ErrDenied, err, last)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	return err
}

// wrongRevision reports whether err is the server refusing a write because
// the key is not at the revision expected.
func wrongRevision(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) &&
		(api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// toChange converts a JetStream entry; nil stays nil (the replay marker).
func toChange(e jetstream.KeyValueEntry) *change {
	if e == nil {
		return nil
	}
	c := &change{key: e.Key(), rev: e.Revision(), at: e.Created()}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		c.value = e.Value()
	case jetstream.KeyValueDelete:
		c.removed = "deleted"
	default: // a purge, or a value the server removed by its TTL or the bucket's
		c.removed = "purged or expired"
	}
	return c
}

// natsWatch forwards a JetStream watcher's entries as changes. The
// watcher's callback blocks while its channel is full, so its channel is
// drained until the watcher closes it, also after stop.
type natsWatch struct {
	w    jetstream.KeyWatcher
	out  chan *change
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func (w *natsWatch) run() {
	defer close(w.done)
	defer close(w.out)
	for e := range w.w.Updates() {
		select {
		case w.out <- toChange(e):
		case <-w.quit:
		}
	}
}

func (w *natsWatch) changes() <-chan *change { return w.out }

func (w *natsWatch) stop() {
	w.once.Do(func() {
		close(w.quit)
		_ = w.w.Stop()
	})
	<-w.done
}
