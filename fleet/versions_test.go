package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// findKey returns the first key of the verdicts bucket written by member
// (a member id of letters, digits and dashes is its own escaped form).
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
	t.Fatalf("no verdict of %s among %v", member, keys)
	return ""
}

// A write of an older version (a delayed or replayed write, or a stale
// instance writing by hand) is ignored by every reader, and the writer
// overwrites it by compare-and-set; a newer instance with the member's id
// makes the older one stop: Run returns ErrMemberConflict and its checker
// probes locally.
func TestStaleWriteNeverOverridesANewerOne(t *testing.T) {
	const n = 4
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.144.1", 1, interval)
	for i := range n {
		w.addClient(fmt.Sprintf("client-%d", i)).join(fleet.Config{})
	}
	w.waitSettled(n, 2)
	a := w.addrs[0]
	prober := w.probersOf(a)[0]
	b := kv(t, w.nats.URL(), fleet.DefaultBucket+"-verdicts")
	key := findKey(t, b, prober)
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
	ignored := map[string]uint64{}
	for _, c := range w.clients {
		ignored[c.id] = c.fleet.Stats().Ignored
	}
	// An older version saying unhealthy, put without compare-and-set.
	stale := map[string]any{}
	for k, v := range cur {
		stale[k] = v
	}
	stale["status"], stale["reason"], stale["seq"] = "unhealthy", "stale", 1
	data, _ := json.Marshal(stale)
	if _, err := b.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "every reader ignoring the stale write", func() bool {
		for _, c := range w.clients {
			if c.fleet.Stats().Ignored <= ignored[c.id] {
				return false
			}
		}
		return true
	})
	var writer *client
	for _, c := range w.clients {
		if c.id == prober {
			writer = c
		}
	}
	testutil.Eventually(t, 5*time.Second, "the writer overwriting it after a conflict", func() bool {
		return writer.fleet.Stats().Conflicts > 0
	})
	time.Sleep(2 * interval) // a stale verdict applied would show by now
	if !w.everyone(a, health.Healthy) {
		t.Fatal("a client applied the stale write")
	}

	// A newer instance of the prober's id writes its key.
	newer := map[string]any{}
	for k, v := range cur {
		newer[k] = v
	}
	newer["epoch"] = time.Now().Add(time.Hour).UnixNano()
	newer["seq"] = 1
	data, _ = json.Marshal(newer)
	if _, err := b.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	err = writer.ended(5 * time.Second)
	if !errors.Is(err, fleet.ErrMemberConflict) {
		t.Fatalf("the older instance's Run: %v, want ErrMemberConflict", err)
	}
	t.Logf("Run: %v", err)
	if writer.fleet.Sharing() {
		t.Fatal("the older instance still shares")
	}
}

// A bucket of a newer format, or not made by the fleet, is refused: by
// New with WithWait, and by Run, which returns the error and leaves the
// checker probing everything.
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
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "future-verdicts", Metadata: map[string]string{"vigil.fleet.format": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "foreign-members"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ bucket, want string }{
		{"future", "format 2"},
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

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   fleet.Config
		field string
	}{
		{fleet.Config{}, "URL"},
		{fleet.Config{URL: "nats://x", Bucket: "a.b"}, "Bucket"},
		{fleet.Config{URL: "nats://x", Member: "a\nb"}, "Member"},
		{fleet.Config{URL: "nats://x", Member: strings.Repeat("m", 129)}, "Member"},
		{fleet.Config{URL: "nats://x", Probers: -1}, "Probers"},
		{fleet.Config{URL: "nats://x", TTL: -time.Second}, "TTL"},
		{fleet.Config{URL: "nats://x", TTL: time.Millisecond}, "TTL"},
	} {
		_, err := fleet.New(tc.cfg)
		var ce *fleet.ConfigError
		if !errors.Is(err, fleet.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v): %v, want a ConfigError on %s", tc.cfg, err, tc.field)
		}
	}
	f, err := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.Config()
	if cfg.Bucket != fleet.DefaultBucket || cfg.Probers != fleet.DefaultProbers || cfg.TTL != fleet.DefaultTTL || cfg.Member == "" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestAttachErrors(t *testing.T) {
	f, _ := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"})
	bus := events.New()
	defer bus.Close()
	passive := healthConfig(time.Second)
	passive.Active.Unhealthy.Interval = -1
	chk, _ := health.NewChecker(passive, bus)
	if err := f.AttachChecker(chk, bus); !errors.Is(err, fleet.ErrNotProbed) {
		t.Errorf("a checker that does not probe unhealthy targets: %v, want ErrNotProbed", err)
	}
	chk, _ = health.NewChecker(healthConfig(time.Second), bus)
	if err := f.AttachChecker(chk, nil); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no bus: %v", err)
	}
	if err := f.AttachChecker(nil, bus); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no checker: %v", err)
	}
	if err := f.Attach(nil); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no upstream: %v", err)
	}
	if err := f.AttachChecker(chk, bus); err != nil {
		t.Fatal(err)
	}
	other, _ := health.NewChecker(healthConfig(time.Second), bus)
	if err := f.AttachChecker(other, bus); !errors.Is(err, fleet.ErrAttached) {
		t.Errorf("a second checker of one name: %v, want ErrAttached", err)
	}
	if !f.Detach("API.fleet.test.") || f.Detach(upstream) {
		t.Error("Detach: want true once (the name normalized), then false")
	}
}

// Run refuses to run twice at once.
func TestRunTwice(t *testing.T) {
	log := &testutil.Buffer{}
	f, _ := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"},
		fleet.WithLogger(slog.New(slog.NewTextHandler(log, nil))), fleet.WithNATSOptions(nats.ReconnectWait(time.Hour)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "Run running", func() bool { return strings.Contains(log.String(), "not connected") })
	if err := f.Run(ctx); !errors.Is(err, fleet.ErrRunning) {
		t.Errorf("a second Run: %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
