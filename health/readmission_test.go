package health

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/resolver"
)

// request is one request of the fake traffic: when, to which target, and
// the status it got.
type request struct {
	at   time.Time
	to   resolver.Address
	code int
}

// drive sends rps requests a second for d, each to the next of c's healthy
// targets in turn (what a round-robin balancer does), answered by answer
// and reported to c, as the balancer's Transport does. It runs on the fake
// clock of a synctest bubble and returns every request sent.
func drive(c *Checker, rps int, d time.Duration, answer func(a resolver.Address) int) []request {
	var log []request
	tick := time.Second / time.Duration(rps)
	next := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(tick) {
		h := c.Healthy()
		if len(h) == 0 {
			continue
		}
		a := h[next%len(h)]
		next++
		code := answer(a)
		c.ReportHTTPStatus(a, code)
		log = append(log, request{at: time.Now(), to: a, code: code})
	}
	return log
}

// passiveEvent is a change of a target's passive verdict and when it was
// published; on a fake clock, when it happened.
type passiveEvent struct {
	at time.Time
	e  StatusChange
}

// passiveChanges follows the changes of a's passive verdict on bus.
func passiveChanges(t *testing.T, bus *events.Bus, name string, a resolver.Address) func() []passiveEvent {
	var (
		mu   sync.Mutex
		evs  []passiveEvent
		last = Healthy
	)
	t.Cleanup(events.Subscribe(bus, StatusTopic(name), func(e StatusChange) {
		mu.Lock()
		defer mu.Unlock()
		if e.Address.Key() == a.Key() && e.Passive != last {
			evs = append(evs, passiveEvent{time.Now(), e})
			last = e.Passive
		}
	}))
	return func() []passiveEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]passiveEvent(nil), evs...)
	}
}

func reasonsOf(evs []passiveEvent) string {
	var rs []string
	for _, p := range evs {
		rs = append(rs, p.at.Format("04:05.000")+" "+p.e.Passive.String()+": "+p.e.Reason)
	}
	return strings.Join(rs, "; ")
}

// The goal of re-admission, with the defaults, three backends and 40
// requests a second (on a fake clock: counts, not timings):
//
//   - a backend that fails all its real traffic while its health check
//     passes gets at most 10 failing requests in the 15 s after its first
//     ejection (when each passing probe ended an ejection, as Envoy does by
//     default, it got one per probe interval, for ever);
//   - a backend that truly recovers gets traffic again within one probe
//     interval of its ejection's end, whether probes end the ejection
//     early (a first one) or its deadline does (a repeated one), and that
//     end comes no later than a probe interval after its deadline.
func TestReadmissionGoal(t *testing.T) {
	const rps = 40
	probeInterval := DefaultInterval * 105 / 100 // with its jitter
	setup := func(t *testing.T, name string) (*Checker, []resolver.Address, func() []passiveEvent) {
		pr := newScripted() // every health check passes, at once
		bus := newBus(t)
		c := newChecker(t, Config{Name: name, Active: Active{Prober: pr}}, bus, nil)
		as := loopback(50, 3, name+".test")
		changes := passiveChanges(t, bus, name, as[0])
		c.SetTargets(as)
		start(t, c)
		return c, as, changes
	}

	t.Run("traffic fails, health check passes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, as, changes := setup(t, "liar")
			liar := as[0]
			log := drive(c, rps, 40*time.Second, func(a resolver.Address) int {
				if a.Key() == liar.Key() {
					return 500
				}
				return 200
			})
			synctest.Wait()
			ch := changes()
			if len(ch) == 0 {
				t.Fatal("the failing backend was never ejected")
			}
			first := ch[0].at
			var before, after int
			for _, r := range log {
				switch d := r.at.Sub(first); {
				case r.to.Key() != liar.Key():
				case d < 0:
					before++
				case d < 15*time.Second:
					after++
				}
			}
			t.Logf("%d requests; the failing backend got %d before its first ejection and %d in the 15 s after it; %s",
				len(log), before, after, reasonsOf(ch))
			if after > 10 {
				t.Fatalf("%d failing requests reached the backend in the 15 s after its first ejection, want at most 10", after)
			}
			if h := c.Healthy(); len(h) != 2 {
				t.Fatalf("healthy %v, want the two good backends", h)
			}
		})
	})

	for _, tc := range []struct {
		name     string
		relapses int // failures on probation before it recovers: 1 makes a repeated ejection
	}{{"recovers after a first ejection", 0}, {"recovers after a repeated ejection", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, as, changes := setup(t, "recovers")
				sick := as[0]
				relapsed := 0
				log := drive(c, rps, 3*time.Minute, func(a resolver.Address) int {
					if a.Key() != sick.Key() {
						return 200
					}
					switch tg, _ := c.Target(sick); {
					case tg.Ejections == 0: // failing until ejected
						return 500
					case tg.Probation && relapsed < tc.relapses:
						relapsed++
						return 500
					}
					return 200
				})
				synctest.Wait()
				ch := changes()
				t.Log(reasonsOf(ch))
				if want := 2 * (1 + tc.relapses); len(ch) != want {
					t.Fatalf("%d changes of the passive verdict, want %d", len(ch), want)
				}
				for i := 1; i < len(ch); i += 2 {
					ejected, ended := ch[i-1], ch[i]
					if ended.at.After(ejected.e.Until.Add(probeInterval)) {
						t.Fatalf("ejection %d ended %v after its deadline", i/2+1, ended.at.Sub(ejected.e.Until))
					}
					var next time.Time
					for _, r := range log {
						if r.to.Key() == sick.Key() && !r.at.Before(ended.at) {
							next = r.at
							break
						}
					}
					if next.IsZero() || next.Sub(ended.at) > probeInterval {
						t.Fatalf("ejection %d ended (%s) at %v; the backend's next request came at %v",
							i/2+1, ended.e.Reason, ended.at, next)
					}
				}
				if s := c.Status(sick); s != Healthy {
					t.Fatalf("the recovered backend is %v", s)
				}
			})
		})
	}
}
