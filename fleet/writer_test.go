package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// testFleet returns a Fleet for the writer's and the group's tests.
func testFleet(t *testing.T, member string) *Fleet {
	t.Helper()
	f, err := New(Config{URL: "nats://127.0.0.1:1", Member: member})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// runWriter runs w until the test ends; the returned channel has its
// result (a test that takes it puts it back, for the cleanup).
func runWriter(t *testing.T, w *writer) chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return done
}

func value(t *testing.T, st *memStore, key string) record {
	t.Helper()
	c, err := st.get(context.Background(), key)
	if err != nil || c.removed != "" {
		t.Fatalf("%s: %+v, %v", key, c, err)
	}
	var r record
	if err := json.Unmarshal(c.value, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A writer writes its member's values by compare-and-set, stamped with its
// epoch, zone and format, and deletes them when it leaves.
func TestWriterWritesAndLeaves(t *testing.T) {
	st := newMemStore()
	f := testFleet(t, "m1")
	w := newWriter(f, "api", st, 42)
	runWriter(t, w)
	for i := range 3 {
		w.put(fmt.Sprintf("api.a%d.m1", i), record{Address: fmt.Sprintf("a%d", i), Status: statusHealthy, Window: 1000}, time.Second)
	}
	w.put("api.a0.m1", record{Address: "a0", Status: statusUnhealthy, Window: 1000}, time.Second)
	testutil.Eventually(t, 5*time.Second, "the values written", func() bool { return f.Stats().Writes >= 3 })
	testutil.Eventually(t, 5*time.Second, "the newest value of a0 written", func() bool {
		c, err := st.get(context.Background(), "api.a0.m1")
		return err == nil && value(t, st, c.key).Status == statusUnhealthy
	})
	r := value(t, st, "api.a1.m1")
	if r.V != FormatVersion || r.Member != "m1" || r.Name != "api" || r.Epoch != 42 || r.Status != statusHealthy {
		t.Fatalf("written: %+v", r)
	}
	w.remove("api.a2.m1")
	testutil.Eventually(t, 5*time.Second, "a2's value deleted", func() bool {
		c, _ := st.get(context.Background(), "api.a2.m1")
		return c != nil && c.removed != ""
	})
	if f.Stats().Conflicts != 0 {
		t.Fatalf("conflicts: %d", f.Stats().Conflicts)
	}
}

// What a writer finds under its key when a write is refused decides what
// it does: its own value (an answer lost) or a removal is written over, no
// conflict; a value of another member is written over and ignored; an
// older instance's is written over, a conflict; a newer instance's stops
// it, a conflict: ErrMemberConflict.
func TestWriterFindsAnotherValueUnderItsKey(t *testing.T) {
	const key = "api.a.m1"
	for _, tc := range []struct {
		name      string
		found     any // written by hand under the key; nil: a removal
		conflicts uint64
		ignored   uint64
		stops     bool
	}{
		{"its own", record{V: FormatVersion, Member: "m1", Epoch: 42, Status: statusHealthy, Window: 1000}, 0, 0, false},
		{"a removal", nil, 0, 0, false},
		{"another member's", record{V: FormatVersion, Member: "intruder", Epoch: 42, Status: statusUnhealthy, Window: 1000}, 0, 1, false},
		{"garbage", "not json", 0, 1, false},
		{"an older instance's", record{V: FormatVersion, Member: "m1", Epoch: 41, Status: statusHealthy, Window: 1000}, 1, 0, false},
		{"one from the future", record{V: FormatVersion, Member: "m1", Epoch: time.Now().Add(time.Hour).UnixNano(), Window: 1000}, 0, 1, false},
		{"a newer instance's", record{V: FormatVersion, Member: "m1", Epoch: 43, Status: statusHealthy, Window: 1000}, 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			f := testFleet(t, "m1")
			w := newWriter(f, "api", st, 42)
			if tc.name == "a newer instance's" {
				w.epoch = time.Now().Add(-time.Minute).UnixNano() // started a minute ago
				r := tc.found.(record)
				r.Epoch = time.Now().UnixNano() // the newer one, now
				tc.found = r
			}
			switch v := tc.found.(type) {
			case nil:
				st.write(key, []byte("x"))
				c, _ := st.get(context.Background(), key)
				if err := st.remove(context.Background(), key, c.rev); err != nil {
					t.Fatal(err)
				}
			case string:
				st.write(key, []byte(v))
			default:
				data, _ := json.Marshal(v)
				st.write(key, data)
			}
			done := runWriter(t, w)
			w.put(key, record{Address: "a", Status: statusHealthy, Window: 1000}, time.Second)
			if tc.stops {
				select {
				case err := <-done:
					if !errors.Is(err, ErrMemberConflict) {
						t.Fatalf("the writer stopped with %v, want ErrMemberConflict", err)
					}
					done <- err // for the cleanup
				case <-time.After(5 * time.Second):
					t.Fatal("the writer did not stop")
				}
			} else {
				testutil.Eventually(t, 5*time.Second, "its value written over", func() bool {
					return f.Stats().Writes == 1
				})
				if r := value(t, st, key); r.Member != "m1" || r.Epoch != w.epoch {
					t.Fatalf("the key holds %+v", r)
				}
			}
			if st := f.Stats(); st.Conflicts != tc.conflicts || st.Ignored != tc.ignored {
				t.Errorf("conflicts %d, ignored %d; want %d, %d", st.Conflicts, st.Ignored, tc.conflicts, tc.ignored)
			}
		})
	}
}

// A write that times out is tried again after a pause (the newest value
// of its key, if another was queued meanwhile); three timeouts in a row
// fail the writer.
func TestWriterRetriesTimeouts(t *testing.T) {
	st := newMemStore()
	st.failures = []error{errTimeout, errTimeout}
	f := testFleet(t, "m1")
	w := newWriter(f, "api", st, 42)
	done := runWriter(t, w)
	w.put("api.a.m1", record{Address: "a", Status: statusHealthy, Window: 1000}, time.Second)
	testutil.Eventually(t, 5*time.Second, "the value written after two timeouts", func() bool { return f.Stats().Writes == 1 })
	st.mu.Lock()
	puts := st.puts
	st.mu.Unlock()
	if puts != 3 {
		t.Errorf("%d puts, want 3", puts)
	}

	st.mu.Lock()
	st.failures = []error{errTimeout, errTimeout, errTimeout}
	st.mu.Unlock()
	w.put("api.a.m1", record{Address: "a", Status: statusUnhealthy, Window: 1000}, time.Second)
	select {
	case err := <-done:
		if !errors.Is(err, errTimeout) {
			t.Fatalf("after three timeouts: %v", err)
		}
		done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("three timeouts in a row did not fail the writer")
	}
	// Another failure is not retried.
	st2 := newMemStore()
	st2.failures = []error{errors.New("broken")}
	w2 := newWriter(f, "api", st2, 42)
	done2 := runWriter(t, w2)
	w2.put("api.b.m1", record{Address: "b", Status: statusHealthy, Window: 1000}, time.Second)
	select {
	case err := <-done2:
		if err == nil || errors.Is(err, errTimeout) {
			t.Fatalf("a failure: %v", err)
		}
		done2 <- err
	case <-time.After(5 * time.Second):
		t.Fatal("a failure did not fail the writer")
	}
}

// A writer removes only what it wrote, and leaves the rest: a key written
// since by someone else is theirs.
func TestWriterLeaveRemovesOnlyItsOwn(t *testing.T) {
	st := newMemStore()
	f := testFleet(t, "m1")
	w := newWriter(f, "api", st, 42)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	w.put("api.a.m1", record{Address: "a", Status: statusHealthy, Window: 1000}, time.Second)
	w.put("api.b.m1", record{Address: "b", Status: statusHealthy, Window: 1000}, time.Second)
	testutil.Eventually(t, 5*time.Second, "two values written", func() bool { return f.Stats().Writes == 2 })
	cancel()
	<-done
	st.write("api.b.m1", []byte("someone else's since"))
	if err := w.leave(); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.get(context.Background(), "api.a.m1"); c.removed == "" {
		t.Error("its value is still there")
	}
	if c, _ := st.get(context.Background(), "api.b.m1"); c.removed != "" {
		t.Error("a value written since by someone else was removed")
	}
}

// The verdict logic runs on any engine behind the store interface: two
// members sharing through a store in memory split the addresses (one
// prober each, r = 1), and each applies the other's verdicts.
func TestGroupsShareThroughAnotherEngine(t *testing.T) {
	st := newMemStore()
	var as []resolver.Address
	for i := range 6 {
		as = append(as, resolver.Address{IP: netip.AddrFrom4([4]byte{10, 7, 0, byte(1 + i)}), Port: 80, Hostname: "api.mem"})
	}
	type member struct {
		f   *Fleet
		g   *group
		chk *health.Checker
	}
	var ms []member
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, id := range []string{"m1", "m2"} {
		f, err := New(Config{URL: "nats://127.0.0.1:1", Member: id, Probers: 1}, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		bus := events.New()
		defer bus.Close()
		chk, err := health.NewChecker(health.Config{Name: "api.mem", Active: health.Active{
			Timeout: time.Second,
			Healthy: health.HealthyRules{Interval: 100 * time.Millisecond}, Unhealthy: health.UnhealthyRules{Interval: 100 * time.Millisecond},
			Prober: health.ProberFunc(func(context.Context, resolver.Address) (health.ProbeOutcome, string) {
				return health.ProbeSuccess, "ok"
			}),
		}}, bus)
		if err != nil {
			t.Fatal(err)
		}
		chk.SetTargets(as)
		g := newGroup(f, chk, bus, "api.mem")
		f.epoch.Store(time.Now().UnixNano())
		wg.Go(func() { _ = chk.Run(ctx) })
		wg.Go(func() {
			if err := g.share(ctx, st, f.epoch.Load()); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		})
		ms = append(ms, member{f, g, chk})
	}
	testutil.Eventually(t, 10*time.Second, "one prober per address, each applying the other's verdicts", func() bool {
		probed := 0
		for _, m := range ms {
			addrs, _ := m.g.snapshot()
			probed += len(addrs)
			if m.f.Stats().Applied == 0 {
				return false
			}
		}
		return probed == len(as)
	})
}
