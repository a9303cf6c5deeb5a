package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-go/vigil/internal/natstest"
)

// testStore opens the fleet's bucket on a fresh embedded server.
func testStore(t *testing.T) (*natsStore, *natstest.Server) {
	t.Helper()
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := openStore(ctx, nc, bucketName(DefaultBucket))
	if err != nil {
		t.Fatal(err)
	}
	return st, ns
}

// Writes are compare-and-set on the key's revision, removals too; get
// returns a removal with its revision, so that a writer can write over it.
func TestStoreCompareAndSet(t *testing.T) {
	st, _ := testStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r1, err := st.put(ctx, "a.b.c", []byte("1"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.put(ctx, "a.b.c", []byte("x"), 0, 0); !errors.Is(err, errRevision) {
		t.Fatalf("creating an existing key: %v, want errRevision", err)
	}
	r2, err := st.put(ctx, "a.b.c", []byte("2"), r1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.put(ctx, "a.b.c", []byte("x"), r1, 0); !errors.Is(err, errRevision) {
		t.Fatalf("writing at an old revision: %v, want errRevision", err)
	}
	if err := st.remove(ctx, "a.b.c", r1); !errors.Is(err, errRevision) {
		t.Fatalf("removing at an old revision: %v, want errRevision", err)
	}
	if c, err := st.get(ctx, "a.b.c"); err != nil || string(c.value) != "2" || c.rev != r2 || c.removed != "" {
		t.Fatalf("get: %+v, %v", c, err)
	}
	if err := st.remove(ctx, "a.b.c", r2); err != nil {
		t.Fatal(err)
	}
	c, err := st.get(ctx, "a.b.c")
	if err != nil || c.removed != "deleted" || c.rev <= r2 {
		t.Fatalf("get after the removal: %+v, %v", c, err)
	}
	if _, err := st.put(ctx, "a.b.c", []byte("3"), 0, 0); !errors.Is(err, errRevision) {
		t.Fatalf("creating over a removal's marker: %v, want errRevision", err)
	}
	if _, err := st.put(ctx, "a.b.c", []byte("3"), c.rev, 0); err != nil {
		t.Fatalf("writing at the marker's revision: %v", err)
	}
	if _, err := st.get(ctx, "x.y.z"); !errors.Is(err, errNoKey) {
		t.Fatalf("get of a key never written: %v, want errNoKey", err)
	}
}

// A watch replays the latest value of every key it watches, then says so,
// then delivers every change; values removed by hand (deleted, purged)
// and by the server (their TTL ran out) come as removals, so that a reader
// stops counting them.
func TestStoreWatchDeliversRemovals(t *testing.T) {
	st, _ := testStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.put(ctx, "u.a.m1", []byte("old"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.put(ctx, "u.other.m1", []byte("not watched"), 0, 0); err != nil {
		t.Fatal(err)
	}
	w, err := st.watch(ctx, []string{"u.a.*", "u.b.*"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	next := func() *change {
		t.Helper()
		select {
		case c := <-w.changes():
			return c
		case <-ctx.Done():
			t.Fatal("no change")
			return nil
		}
	}
	if c := next(); c == nil || c.key != "u.a.m1" || string(c.value) != "old" {
		t.Fatalf("replay: %+v", c)
	}
	if c := next(); c != nil {
		t.Fatalf("want the end of the replay, got %+v", c)
	}
	rev, err := st.put(ctx, "u.b.m2", []byte("new"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := next(); c.key != "u.b.m2" || string(c.value) != "new" || c.rev != rev || c.removed != "" {
		t.Fatalf("put: %+v", c)
	}
	if err := st.remove(ctx, "u.b.m2", rev); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.key != "u.b.m2" || c.removed != "deleted" || c.value != nil {
		t.Fatalf("delete: %+v", c)
	}
	if err := st.kv.Purge(ctx, "u.a.m1"); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.key != "u.a.m1" || c.removed == "" {
		t.Fatalf("purge: %+v", c)
	}
	start := time.Now()
	if _, err := st.put(ctx, "u.a.m3", []byte("short-lived"), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.key != "u.a.m3" || c.removed != "" {
		t.Fatalf("put with a TTL: %+v", c)
	}
	c := next()
	if c.key != "u.a.m3" || c.removed != "purged or expired" {
		t.Fatalf("want the expiry of u.a.m3, got %+v", c)
	}
	t.Logf("a value of TTL 1s removed by the server after %v", time.Since(start).Round(time.Millisecond))
}

// A store whose server refuses an operation for lack of permission says
// so (ErrDenied), even where the refusal only shows as a timeout.
func TestStoreSaysDenied(t *testing.T) {
	const bucket = "vigil-fleet-verdicts-v2"
	admin := natstest.User{Name: "admin", Password: "a"}
	reader := natstest.User{Name: "reader", Password: "r", Publish: readerPublish(bucket), Subscribe: []string{"_INBOX.>"}}
	ns, err := natstest.Start(t.TempDir(), natstest.WithUsers(admin, reader))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	anc, err := nats.Connect(ns.URL(), nats.UserInfo("admin", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	if _, err := openStore(ctx, anc, bucket); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.URL(), nats.UserInfo("reader", "r"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := openStore(ctx, nc, bucket)
	if err != nil {
		t.Fatalf("a reader opens the bucket: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer pcancel()
	_, err = st.put(pctx, "u.a.m", []byte("x"), 0, 0)
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("a reader's write: %v, want ErrDenied", err)
	}
	t.Logf("a reader's write: %v", err)
	// Creating the bucket is refused too.
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	defer ocancel()
	if _, err := openStore(octx, nc, "other-verdicts-v2"); !errors.Is(err, ErrDenied) {
		t.Fatalf("a reader creating a bucket: %v, want ErrDenied", err)
	}
}

// readerPublish is what a member that may read the bucket but not write it
// may publish: the JetStream API subjects of docs/fleet.md, without
// $KV.<bucket>.>.
func readerPublish(bucket string) []string {
	return []string{
		"$JS.API.STREAM.INFO.KV_" + bucket,
		"$JS.API.CONSUMER.CREATE.KV_" + bucket + ".>",
		"$JS.API.CONSUMER.DELETE.KV_" + bucket + ".>",
		"$JS.API.DIRECT.GET.KV_" + bucket + ".>",
		"$JS.FC.KV_" + bucket + ".>",
	}
}

// The bucket of another format, of none, or without per-value TTLs is
// refused.
func TestStoreRefusesOtherBuckets(t *testing.T) {
	_, ns := testStore(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		cfg  jetstream.KeyValueConfig
		want string
	}{
		{jetstream.KeyValueConfig{Bucket: "newer", LimitMarkerTTL: time.Second, Metadata: map[string]string{formatKey: "3"}}, "newer vigil"},
		{jetstream.KeyValueConfig{Bucket: "older", LimitMarkerTTL: time.Second, Metadata: map[string]string{formatKey: "1"}}, "older vigil"},
		{jetstream.KeyValueConfig{Bucket: "foreign", LimitMarkerTTL: time.Second}, "not a vigil fleet bucket"},
		{jetstream.KeyValueConfig{Bucket: "nottl", Metadata: map[string]string{formatKey: "2"}}, "per-value TTLs"},
	} {
		if _, err := js.CreateKeyValue(ctx, tc.cfg); err != nil {
			t.Fatal(err)
		}
		_, err := openStore(ctx, nc, tc.cfg.Bucket)
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bucket %s: %v, want ErrIncompatible saying %q", tc.cfg.Bucket, err, tc.want)
		}
	}
}
