package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/testutil"
)

// kv opens a bucket of the test's server directly.
func kv(t *testing.T, url, bucket string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// findKey returns the key of member's value on a (member ids of letters,
// digits and dashes are their own escaped form).
func findKey(t *testing.T, b jetstream.KeyValue, member string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := b.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "."+member) {
			return k
		}
	}
	t.Fatalf("no value of %s among %v", member, keys)
	return ""
}

// value reads key's value as a map, epochs kept exact.
func value(t *testing.T, b jetstream.KeyValue, key string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := b.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var cur map[string]any
	dec := json.NewDecoder(bytes.NewReader(e.Value()))
	dec.UseNumber() // epochs are nanoseconds: a float64 would round them
	if err := dec.Decode(&cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// put writes v under key by hand, without compare-and-set.
func put(t *testing.T, b jetstream.KeyValue, key string, v map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, _ := json.Marshal(v)
	if _, err := b.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
}

func with(v map[string]any, kv ...any) map[string]any {
	out := maps.Clone(v)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// Each key has one writer, the member whose id ends it. A value of an
// older instance of that member (a stale process, a replay) is ignored by
// every reader and overwritten by the writer, which counts the conflict; a
// value not of that member (written by hand) is overwritten but is no
// conflict; a newer instance's value makes the older instance stop: Run
// returns ErrMemberConflict and its checker probes locally.
func TestValuesOfAnotherInstance(t *testing.T) {
	const n = 4
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.144.1", 1, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	prober := w.probersOf(a)[0]
	var writer *client
	for _, c := range w.clients {
		if c.id == prober {
			writer = c
		}
	}
	b := kv(t, w.nats.URL(), "vigil-fleet-verdicts-v2")
	key := findKey(t, b, prober)
	cur := value(t, b, key)
	epoch, _ := cur["epoch"].(json.Number).Int64()

	ignored := map[string]uint64{}
	for _, c := range w.clients {
		ignored[c.id] = c.fleet.Stats().Ignored
	}
	// An older instance's value saying unhealthy.
	put(t, b, key, with(cur, "status", "unhealthy", "reason", "stale", "epoch", epoch-int64(time.Second)))
	testutil.Eventually(t, 5*time.Second, "every other reader ignoring the older instance's value", func() bool {
		for _, c := range w.clients {
			if c != writer && c.fleet.Stats().Ignored <= ignored[c.id] {
				return false
			}
		}
		return true
	})
	testutil.Eventually(t, 5*time.Second, "the writer overwriting it, counting a conflict", func() bool {
		return writer.fleet.Stats().Conflicts == 1
	})
	if !w.everyone(a, health.Healthy) {
		t.Fatal("a client applied the older instance's value")
	}

	// A value of another member under the prober's key: overwritten, no
	// conflict.
	put(t, b, key, with(cur, "member", "someone-else", "status", "unhealthy"))
	testutil.Eventually(t, 5*time.Second, "the writer overwriting a value not its own", func() bool {
		return value(t, b, key)["member"] == prober
	})
	if got := writer.fleet.Stats().Conflicts; got != 1 {
		t.Errorf("a value of another member counted as a conflict: %d conflicts", got)
	}

	// A newer instance of the prober's id writes its key.
	put(t, b, key, with(cur, "epoch", time.Now().UnixNano()))
	err := writer.ended(5 * time.Second)
	if !errors.Is(err, fleet.ErrMemberConflict) {
		t.Fatalf("the older instance's Run: %v, want ErrMemberConflict", err)
	}
	t.Logf("Run: %v", err)
	if writer.fleet.Sharing() || !strings.Contains(writer.fleet.Stats().NotSharing, "after this one") {
		t.Fatalf("the older instance: %+v", writer.fleet.Stats())
	}
}

// A bucket of a newer format, or not made by the fleet, is refused: by
// New with WithWait, and by Run, which returns the error and leaves the
// checker probing everything. (Bucket names carry the format, so this
// takes a bucket made by hand.)
func TestIncompatibleBucketIsRefused(t *testing.T) {
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "future-verdicts-v2", LimitMarkerTTL: time.Second,
		Metadata: map[string]string{"vigil.fleet.format": "3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "foreign-verdicts-v2"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ bucket, want string }{
		{"future", "format 3"},
		{"foreign", "not a vigil fleet bucket"},
	} {
		_, err := fleet.New(fleet.Config{URL: ns.URL(), Bucket: tc.bucket}, fleet.WithWait(5*time.Second))
		if !errors.Is(err, fleet.ErrIncompatible) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New, bucket %s: %v, want ErrIncompatible saying %q", tc.bucket, err, tc.want)
		}
		f, err := fleet.New(fleet.Config{URL: ns.URL(), Bucket: tc.bucket})
		if err != nil {
			t.Fatal(err)
		}
		bus := events.New()
		chk, _ := health.NewChecker(healthConfig(time.Second), bus)
		if err := f.AttachChecker(chk, bus); err != nil {
			t.Fatal(err)
		}
		if err := f.Run(ctx); !errors.Is(err, fleet.ErrIncompatible) {
			t.Errorf("Run, bucket %s: %v, want ErrIncompatible", tc.bucket, err)
		}
		bus.Close()
	}
}
