package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/natstest"
	"github.com/vigil-go/vigil/internal/rendezvous"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// bucket is the fleet's bucket with the default Bucket.
const bucket = "vigil-fleet-verdicts-v2"

// Permissions of docs/fleet.md: what a member must be allowed to publish
// (its own keys only: the last token of a key is its member id), and what
// one that may only read (and so probes locally) is allowed.
func memberPublish(bucket, member string) []string {
	return append(readerPublish(bucket),
		"$KV."+bucket+".*.*."+member,       // its values, and no one else's
		"$JS.API.INFO",                     // creating the bucket checks the account
		"$JS.API.STREAM.CREATE.KV_"+bucket) // creating the bucket when missing
}

func readerPublish(bucket string) []string {
	return []string{
		"$JS.API.STREAM.INFO.KV_" + bucket,            // opening the bucket
		"$JS.API.CONSUMER.CREATE.KV_" + bucket + ".>", // watching keys
		"$JS.API.CONSUMER.DELETE.KV_" + bucket + ".>", // ... and stopping
		"$JS.API.DIRECT.GET.KV_" + bucket + ".>",      // reading a key after a conflict
		"$JS.FC.KV_" + bucket + ".>",                  // flow control of the watches
	}
}

// With the permissions of docs/fleet.md, each member may write its own
// keys and no other's, and the fleet shares as usual. A member that the
// server does not allow to write cannot, says so (log and Stats) and
// probes every address locally.
func TestMemberWithoutWritePermissionProbesLocally(t *testing.T) {
	interval := 200 * time.Millisecond
	users := []natstest.User{{Name: "reader", Password: "r", Publish: readerPublish(bucket), Subscribe: []string{"_INBOX.>"}}}
	for i := range 3 {
		id := fmt.Sprintf("client-%d", i)
		users = append(users, natstest.User{Name: id, Password: "m", Publish: memberPublish(bucket, id), Subscribe: []string{"_INBOX.>"}})
	}
	w := newWorld(t, "127.0.148.1", 2, interval, natstest.WithUsers(users...))
	for i := range 3 {
		id := fmt.Sprintf("client-%d", i)
		w.addClient(id).join(fleet.Config{}, fleet.WithNATSOptions(nats.UserInfo(id, "m")))
	}
	w.waitSettled(3, 3)
	// A member cannot write another's key.
	b := kvAs(t, w.nats.URL(), "client-0", "m")
	other := findKey(t, b, "client-1")
	pctx, pcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer pcancel()
	if _, err := b.Put(pctx, other, []byte(`{}`)); err == nil {
		t.Fatalf("client-0 wrote client-1's key %s", other)
	}
	ro := w.addClient("read-only")
	ro.join(fleet.Config{}, fleet.WithNATSOptions(nats.UserInfo("reader", "r")))
	testutil.Eventually(t, 10*time.Second, "the read-only member refused", func() bool {
		return ro.fleet.Stats().Denied > 0
	})
	st := ro.fleet.Stats()
	if st.Sharing || !strings.Contains(st.NotSharing, "permissions") || !strings.Contains(st.NotSharing, "$KV."+bucket) {
		t.Errorf("the read-only member's Stats: %+v, want not sharing, saying which permission it lacks", st)
	}
	if log := ro.log.String(); !strings.Contains(log, "refuses this member") || !strings.Contains(log, "Permissions Violation for Publish") {
		t.Errorf("the read-only member's log does not say it is refused:\n%s", log)
	}
	t.Logf("NotSharing: %s", st.NotSharing)
	// It probes every address itself, every interval.
	stop := countProbes(ro)
	time.Sleep(5 * interval)
	probed := stop()
	for _, a := range w.addrs {
		if probed[a.String()] < 3 {
			t.Errorf("the read-only member probed %v %d times in 5 intervals, want about 5", a, probed[a.String()])
		}
	}
	for _, r := range ro.fleet.Roles() {
		if r.Kind != fleet.RoleLocal {
			t.Errorf("the read-only member's role on %v: %v, want local", r.Address, r.Kind)
		}
	}
	// Nothing of it is in the bucket, and the others still share.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := b.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ".read-only") {
			t.Errorf("the read-only member wrote %s", k)
		}
	}
	if len(w.sharing()) != 3 {
		t.Errorf("%d members share, want the 3 allowed to", len(w.sharing()))
	}
}

// kvAs opens the fleet's bucket as user.
func kvAs(t *testing.T, url, user, password string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// madeUp returns n member ids, starting with prefix, that rank above every
// member of real on a: made-up members that would take every prober's
// place.
func madeUp(prefix string, a resolver.Address, real []string, n int) []string {
	seed := rendezvous.Seed(canonical(a))
	var top uint64
	for _, m := range real {
		top = max(top, rendezvous.Score(seed, m))
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); rendezvous.Score(seed, id) > top {
			out = append(out, id)
		}
	}
	return out
}

// forge writes, by hand, a value of member on a; key is a real member's
// key on a (member ids of letters, digits and dashes are their own escaped
// form).
func forge(t *testing.T, b jetstream.KeyValue, key, member string, a resolver.Address, v map[string]any) string {
	t.Helper()
	fk := key[:strings.LastIndex(key, ".")+1] + member
	rec := map[string]any{"v": 2, "member": member, "name": upstream, "address": canonical(a), "epoch": time.Now().UnixNano()}
	for k, x := range v {
		rec[k] = x
	}
	data, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Put(ctx, fk, data); err != nil {
		t.Fatal(err)
	}
	return fk
}

// Whoever can write to the bucket can forge values, but each one counts at
// most for the reader's own bounds: a verdict for its window (two healthy
// intervals here), a claim for a claim's (an interval, a probe timeout and
// a window); made-up members that outrank every real one take the
// probers' places and, two of them saying unhealthy, make the fleet hold
// a healthy backend unhealthy, for that long only, though their values
// say an hour and stay in the bucket. Then the real members take their
// places back and the backend is healthy everywhere again.
func TestForgedValuesCountOnlyBriefly(t *testing.T) {
	const n = 5
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.148.11", 2, interval)
	var ids []string
	for i := range n {
		c := w.addClient(fmt.Sprintf("client-%d", i))
		c.join(fleet.Config{})
		ids = append(ids, c.id)
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	b := kv(t, w.nats.URL(), bucket)
	key := findKey(t, b, w.probersOf(a)[0])
	hour := time.Hour.Milliseconds()
	fake := madeUp("intruder", a, ids, 3)
	start := time.Now()
	forge(t, b, key, fake[0], a, map[string]any{"status": "unhealthy", "reason": "forged", "window_ms": hour})
	forge(t, b, key, fake[1], a, map[string]any{"status": "unhealthy", "reason": "forged", "window_ms": hour})
	forge(t, b, key, fake[2], a, map[string]any{"status": "claim", "window_ms": hour, "delay_ms": hour})

	testutil.Eventually(t, 5*time.Second, "the forged verdicts taking effect", func() bool {
		return slices.ContainsFunc(w.clients, func(c *client) bool { return c.chk.Status(a) == health.Unhealthy })
	})
	// The bound: the longest a forged value counts (a claim's window) and
	// the time for the real probers' own probes to confirm the backend
	// healthy again (Healthy.Successes probes), and a second for the loaded
	// machine.
	claimWindow := interval + interval + 2*interval // the healthy interval, the probe timeout, a window
	bound := claimWindow + 3*interval + time.Second
	testutil.Eventually(t, 10*time.Second, "the real members probing it again and the backend healthy everywhere", func() bool {
		ps := w.probersOf(a)
		return len(ps) == fleet.DefaultProbers && !slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(p, "intruder") }) &&
			w.everyone(a, health.Healthy)
	})
	took := time.Since(start)
	t.Logf("forged values counted for %v (bound %v)", took, bound)
	if took > bound {
		t.Errorf("the forged values counted for %v, want at most %v", took, bound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Get(ctx, key[:strings.LastIndex(key, ".")+1]+fake[0]); err != nil {
		t.Fatalf("the forged value is no longer in the bucket (%v): the test shows nothing", err)
	}
	// And they stay without effect.
	time.Sleep(5 * interval)
	if !w.everyone(a, health.Healthy) || len(w.probersOf(a)) != fleet.DefaultProbers {
		t.Errorf("after the bound: probers %v", w.probersOf(a))
	}
}

// A value the bucket removed no longer counts, long before its window
// would end: claims of made-up members (squatting every prober's place,
// each counting for up to 10.6s here: a probe timeout of 10s) that are
// deleted, purged, or removed by the server as their TTL runs out let the
// real members take their places back at once.
func TestRemovedValuesNoLongerCount(t *testing.T) {
	const n = 4
	interval := 200 * time.Millisecond
	w := newWorld(t, "127.0.148.21", 1, interval)
	var ids []string
	for i := range n {
		hc := healthConfig(interval)
		hc.Active.Timeout = 10 * time.Second // claims count up to 10.6s
		c := w.addClientWith(fmt.Sprintf("client-%d", i), hc)
		c.join(fleet.Config{})
		ids = append(ids, c.id)
	}
	w.waitSettled(n, fleet.DefaultProbers)
	a := w.addrs[0]
	b := kv(t, w.nats.URL(), bucket)
	key := findKey(t, b, w.probersOf(a)[0])
	nc, err := nats.Connect(w.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, how := range []string{"deleted", "purged", "expired"} {
		t.Run(how, func(t *testing.T) {
			fake := madeUp("squatter-"+how, a, ids, 3)
			var keys []string
			for _, f := range fake {
				keys = append(keys, forge(t, b, key, f, a, map[string]any{"status": "claim", "window_ms": time.Hour.Milliseconds()}))
			}
			testutil.Eventually(t, 5*time.Second, "the made-up members taking every place", func() bool {
				return len(w.probersOf(a)) == 0
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			for i, k := range keys {
				var err error
				switch how {
				case "deleted":
					err = b.Delete(ctx, k)
				case "purged":
					err = b.Purge(ctx, k)
				case "expired": // the same claim again, with a TTL of 1s
					m := nats.NewMsg("$KV." + bucket + "." + k)
					m.Data, _ = json.Marshal(map[string]any{"v": 2, "member": fake[i], "name": upstream, "address": canonical(a),
						"epoch": time.Now().UnixNano(), "status": "claim", "window_ms": time.Hour.Milliseconds()})
					_, err = js.PublishMsg(ctx, m, jetstream.WithMsgTTL(time.Second))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// Well within the claims' 10.6s.
			testutil.Eventually(t, 8*time.Second, "the real members probing it again", func() bool {
				return len(w.probersOf(a)) == fleet.DefaultProbers
			})
			t.Logf("the made-up members' values %s; real probers back after %v", how, time.Since(start))
		})
	}
}
