package resolver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/dnstest"
)

// The tests of this file run a Source on the fake clock of testing/synctest:
// its queries go to a dnstest.Server in process (offline), so that every
// goroutine of the bubble blocks durably between resolutions and the clock
// jumps to the next timer. What they assert about time is exact, whatever
// the load of the machine.

// offline is an exchanger that asks srv in process, without the network,
// and remembers when each query came. While silent, queries get no reply
// and time out after their timeout, on the bubble's clock.
type offline struct {
	srv *dnstest.Server

	mu     sync.Mutex
	asked  []asked
	silent bool
	during func() // called during each exchange, if set
}

// asked is one query an offline exchanger received.
type asked struct {
	at    time.Time
	name  string // fully qualified, as asked
	qtype uint16
}

func (o *offline) exchange(ctx context.Context, m *dns.Msg, _ string, timeout time.Duration) (*dns.Msg, error) {
	o.mu.Lock()
	q := m.Question[0]
	o.asked = append(o.asked, asked{at: time.Now(), name: q.Name, qtype: q.Qtype})
	silent, during := o.silent, o.during
	o.mu.Unlock()
	if during != nil {
		during()
	}
	if !silent {
		return o.srv.Reply(m), nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, timeoutAfter(timeout, "udp")
	}
}

// times returns when the queries for name and qtype came, in order.
func (o *offline) times(name string, qtype uint16) []time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []time.Time
	for _, a := range o.asked {
		if NormalizeName(a.name) == NormalizeName(name) && a.qtype == qtype {
			out = append(out, a.at)
		}
	}
	return out
}

// setSilent makes the queries from now on time out (true), or be answered.
func (o *offline) setSilent(silent bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.silent = silent
}

// offlineSource returns a Source for cfg whose queries go to a new
// in-process server, that server, and the exchanger between them. Call it
// inside a bubble: the Source's timers and channels belong to it.
func offlineSource(t *testing.T, cfg Config, bus *events.Bus, opts ...Option) (*Source, *dnstest.Server, *offline) {
	t.Helper()
	srv := dnstest.New()
	x := &offline{srv: srv}
	cfg.Servers = []string{"192.0.2.53"} // never dialled
	s, err := NewSource(cfg, bus, append([]Option{withExchanger(x)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, srv, x
}

// advance lets the bubble's clock run for d, then waits until every
// goroutine of the bubble is blocked again.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// gaps returns the durations between consecutive times.
func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// TestScheduleFollowsTTL: the refresh comes when the answer's TTL runs out
// (the smallest along a CNAME chain), up to 10% early, clamped to [MinTTL,
// MaxTTL] and never below MinTTL; State says when it is due.
func TestScheduleFollowsTTL(t *testing.T) {
	tests := []struct {
		name           string
		ttl            uint32 // of the A record
		cnameTTL       uint32 // of a CNAME in front of it; 0: none
		minTTL, maxTTL time.Duration
		least, most    time.Duration // between two queries
	}{
		{name: "TTL", ttl: 10, least: 9 * time.Second, most: 10 * time.Second},
		{name: "smallest TTL of a CNAME chain", ttl: 300, cnameTTL: 2, least: 1800 * time.Millisecond, most: 2 * time.Second},
		{name: "TTL 0 raised to MinTTL", ttl: 0, minTTL: 150 * time.Millisecond, least: 150 * time.Millisecond, most: 150 * time.Millisecond},
		{name: "TTL 2^31-1 lowered to MaxTTL", ttl: 1<<31 - 1, maxTTL: 100 * time.Second, least: 90 * time.Second, most: 100 * time.Second},
		{name: "jitter never below MinTTL", ttl: 10, minTTL: 9900 * time.Millisecond, least: 9900 * time.Millisecond, most: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				name := "web.test"
				if tt.cnameTTL > 0 {
					name = "alias.test" // asked instead: its answer is the chain to web.test
				}
				cfg := Config{Name: name, Port: 80, Family: IPv4Only, MinTTL: tt.minTTL, MaxTTL: tt.maxTTL}
				s, srv, x := offlineSource(t, cfg, nil)
				must(t, srv.SetA("web.test", tt.ttl, "10.0.0.1"))
				if tt.cnameTTL > 0 {
					srv.SetCNAME("alias.test", "web.test", tt.cnameTTL)
				}
				start(t, s)
				for range 20 {
					synctest.Wait()
					st := s.State()
					if got := st.Next.Sub(st.Answer.At); got < tt.least || got > tt.most {
						t.Fatalf("next resolution due %v after the answer, want %v..%v", got, tt.least, tt.most)
					}
					advance(time.Until(st.Next))
				}
				asked := x.times(name, dns.TypeA)
				if len(asked) < 20 {
					t.Fatalf("%d queries in 20 rounds", len(asked))
				}
				for i, g := range gaps(asked) {
					if g < tt.least || g > tt.most {
						t.Fatalf("query %d came %v after the one before, want %v..%v", i+1, g, tt.least, tt.most)
					}
				}
			})
		})
	}
}

// TestScheduleBackoff: failed resolutions are retried after Initial,
// doubling up to Max; an answer ends the backoff, and the next failure
// starts it again from Initial.
func TestScheduleBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		failures := record(t, bus, FailureTopic("web.test"))
		s, srv, x := offlineSource(t, Config{
			Name: "web.test", Port: 80, Family: IPv4Only, MinTTL: time.Minute, MaxTTL: time.Minute,
			Backoff: Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: -1},
		}, bus)
		srv.SetRcode("web.test", dns.RcodeServerFailure)
		start(t, s)
		advance(38 * time.Second) // 1 + 2 + 4 + 8 + 10 + 10 + ... seconds
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
		if got := gaps(x.times("web.test", dns.TypeA)); !slices.Equal(got, want) {
			t.Fatalf("retries after %v, want %v", got, want)
		}
		fs := failures.all()
		if len(fs) != 7 || fs[6].Next != 10*time.Second || !errors.Is(fs[6].Err, ErrServerFailure) {
			t.Fatalf("failures %+v, want 7, the last due again in 10s", fs)
		}
		if st := s.State(); st.Failures != 7 || !errors.Is(st.Err, ErrServerFailure) || !st.ErrAt.Equal(time.Now().Add(-3*time.Second)) ||
			!st.Next.Equal(st.ErrAt.Add(10*time.Second)) {
			t.Fatalf("state %+v, want 7 failures, the last 3s ago, the next try 10s after it", st)
		}

		srv.SetRcode("web.test", dns.RcodeSuccess)
		must(t, srv.SetA("web.test", 60, "10.0.0.1"))
		advance(7 * time.Second) // the retry at 10s answers
		if st := s.State(); len(st.Addresses) != 1 || st.Failures != 0 || !errors.Is(st.Err, ErrServerFailure) {
			t.Fatalf("state %+v, want the address, no failure in a row, the last error kept", st)
		}
		n := len(x.times("web.test", dns.TypeA))
		srv.SetRcode("web.test", dns.RcodeServerFailure)
		advance(time.Minute + 3*time.Second) // the refresh at the TTL fails, then the retries
		got := gaps(x.times("web.test", dns.TypeA)[n-1:])
		if want := []time.Duration{time.Minute, time.Second, 2 * time.Second}; !slices.Equal(got, want) {
			t.Fatalf("after an answer, queries after %v, want %v: the backoff starts again", got, want)
		}
	})
}

// TestScheduleNegativeHold: after NXDOMAIN or NODATA the last set is kept
// for NXDomainHold from the first negative answer, and the empty set is
// published by the first resolution at or after its end.
func TestScheduleNegativeHold(t *testing.T) {
	tests := []struct {
		name   string
		breaks func(*dnstest.Server)
		want   error
	}{
		{"NXDOMAIN", func(s *dnstest.Server) { s.Remove("web.test") }, ErrNXDomain},
		{"NODATA", func(s *dnstest.Server) {
			s.SetSRV("web.test", 0, dnstest.SRV{Target: "other.test", Port: 80}) // the name exists, without addresses
			must(t, s.SetA("web.test", 0))
			must(t, s.SetAAAA("web.test", 0))
		}, ErrNoData},
	}
	const hold = 5500 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bus := newBus(t)
				changes := record(t, bus, Topic("web.test"))
				failures := record(t, bus, FailureTopic("web.test"))
				s, srv, _ := offlineSource(t, Config{Name: "web.test", Port: 80, NXDomainHold: hold}, bus)
				must(t, srv.SetA("web.test", 0, "10.0.0.1"))
				must(t, srv.SetAAAA("web.test", 0, "fd00::1"))
				start(t, s)
				synctest.Wait()
				good := s.Addresses()

				tt.breaks(srv)
				advance(time.Second) // the first negative answer
				broke := time.Now()
				if f := failures.all(); len(f) != 1 || !errors.Is(f[0].Err, tt.want) || f[0].Next != time.Second {
					t.Fatalf("failures %+v, want one %v, next try in 1s (MinTTL)", f, tt.want)
				}
				advance(5 * time.Second) // 5s of the 5.5s hold
				if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 || len(failures.all()) != 6 {
					t.Fatalf("after 5s: addresses %v, %d changes, %d failures; want %v held", s.Addresses(), len(changes.all()), len(failures.all()), good)
				}
				if f := failures.all()[5]; f.Next != time.Second {
					// the hold ends in 0.5s, but no resolution comes sooner than MinTTL
					t.Fatalf("last failure %+v, want the next try at MinTTL", f)
				}
				advance(time.Second)
				c := changes.all()
				if len(c) != 2 || len(c[1].Addresses) != 0 || !slices.Equal(c[1].Removed, good) {
					t.Fatalf("changes %+v, want the empty set after the hold", c)
				}
				if el := time.Since(broke); el != 6*time.Second {
					t.Fatalf("empty set %v after the first negative answer, want 6s: the first resolution after the %v hold", el, hold)
				}
			})
		})
	}
}

// TestScheduleHoldObsolete: an address that vanishes from the answers for
// less than HoldObsolete is never removed; one that stays away is removed by
// the first resolution at or after HoldObsolete from the last answer it was
// in.
func TestScheduleHoldObsolete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		changes := record(t, bus, Topic("web.test"))
		s, srv, _ := offlineSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, HoldObsolete: 3500 * time.Millisecond}, bus)
		must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2")) // TTL 0: a resolution per second (MinTTL)
		start(t, s)
		synctest.Wait()
		both := s.Addresses()

		// A rotating subset: 10.0.0.1 is away for three answers.
		must(t, srv.SetA("web.test", 0, "10.0.0.2"))
		advance(3 * time.Second)
		must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
		advance(2 * time.Second)
		if !slices.Equal(s.Addresses(), both) || len(changes.all()) != 1 {
			t.Fatalf("addresses %v after %d changes during subset rotation, want %v, one change", s.Addresses(), len(changes.all()), both)
		}

		// Then it is away for good: last seen now (at 5s); removed by the
		// resolution at 9s, the first at or after 8.5s.
		must(t, srv.SetA("web.test", 0, "10.0.0.2"))
		advance(3 * time.Second)
		if !slices.Equal(s.Addresses(), both) {
			t.Fatalf("addresses %v 3s after 10.0.0.1 was last seen, want it held", s.Addresses())
		}
		advance(time.Second)
		c := changes.all()
		if len(c) != 2 || !slices.Equal(c[1].Removed, addrs("web.test", 80, "10.0.0.1")) || len(c[1].Added) != 0 {
			t.Fatalf("changes %+v, want 10.0.0.1 removed 4s after it was last seen", c)
		}
	})
}

// TestScheduleNeverSoonerThanMinTTL: the refresh jitter moves a query
// earlier but never below MinTTL, and a HoldObsolete expiry that falls
// sooner than MinTTL after an answer waits for MinTTL too.
func TestScheduleNeverSoonerThanMinTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const minTTL = 200 * time.Millisecond
		bus := newBus(t)
		changes := record(t, bus, Topic("web.test"))
		s, srv, x := offlineSource(t, Config{Name: "web.test", Port: 80, MinTTL: minTTL, HoldObsolete: minTTL + minTTL/4}, bus)
		must(t, srv.SetA("web.test", 0, "10.0.0.1", "10.0.0.2"))
		start(t, s)
		synctest.Wait()
		must(t, srv.SetA("web.test", 0, "10.0.0.2")) // 10.0.0.1's hold ends a quarter MinTTL after an answer
		advance(2 * time.Second)
		if len(changes.all()) != 2 {
			t.Fatalf("changes %+v, want 10.0.0.1 removed", changes.all())
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			asked := x.times("web.test", qtype)
			if len(asked) != 11 {
				t.Fatalf("%d %s queries in 2s, want 11 (one per MinTTL)", len(asked), dns.TypeToString[qtype])
			}
			for i, g := range gaps(asked) {
				if g != minTTL {
					t.Errorf("%s query %d came %v after the one before, want MinTTL %v", dns.TypeToString[qtype], i+1, g, minTTL)
				}
			}
		}
	})
}

// TestScheduleSRVTargetHeld: an SRV target whose A and AAAA records vanish
// (NXDOMAIN) keeps its last addresses for NXDomainHold, like the queried
// name itself, then they are removed.
func TestScheduleSRVTargetHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const name = "_x._tcp.svc.test"
		bus := newBus(t)
		changes := record(t, bus, Topic(name))
		s, srv, _ := offlineSource(t, Config{Name: name, Type: SRV, NXDomainHold: 3 * time.Second}, bus)
		must(t, srv.SetA("a.test", 0, "10.0.0.1"))
		must(t, srv.SetA("b.test", 0, "10.0.0.2"))
		srv.SetSRV(name, 0, dnstest.SRV{Target: "a.test", Port: 8001}, dnstest.SRV{Target: "b.test", Port: 8002})
		start(t, s)
		synctest.Wait()
		good := s.Addresses()
		if len(good) != 2 {
			t.Fatalf("addresses %v, want a.test's and b.test's", good)
		}

		srv.Remove("a.test")
		advance(time.Second) // found vanished
		advance(2*time.Second + 999*time.Millisecond)
		if !slices.Equal(s.Addresses(), good) || len(changes.all()) != 1 {
			t.Fatalf("addresses %v after %d changes within the hold, want %v kept", s.Addresses(), len(changes.all()), good)
		}
		advance(time.Millisecond) // the resolution 3s after the one that found it vanished
		c := changes.all()
		if len(c) != 2 || !slices.Equal(ips(c[1].Removed), []string{"10.0.0.1"}) || !slices.Equal(ips(c[1].Addresses), []string{"10.0.0.2"}) {
			t.Fatalf("changes %+v, want a.test's address removed", c)
		}
	})
}

// TestScheduleTimeouts: a server that never answers fails each query at
// Config.Timeout, and the resolution is retried with the backoff; State
// counts the failures in a row.
func TestScheduleTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, srv, x := offlineSource(t, Config{
			Name: "web.test", Port: 80, Timeout: 3 * time.Second,
			Backoff: Backoff{Initial: time.Second, Max: time.Second, Jitter: -1},
		}, nil)
		must(t, srv.SetA("web.test", 60, "10.0.0.1"))
		x.setSilent(true)
		start(t, s)
		advance(12 * time.Second) // (3s + 1s) × 3
		st := s.State()
		if st.Failures != 3 || !errors.Is(st.Err, ErrTimeout) || len(st.Addresses) != 0 || !st.Answer.At.IsZero() {
			t.Fatalf("state %+v, want 3 timeouts in a row and no answer", st)
		}
		if want := "resolver: web.test. A: timeout after 3s (server 192.0.2.53:53)"; !slices.Contains(strings.Split(st.Err.Error(), "\n"), want) {
			t.Fatalf("error %q, want a line %q", st.Err, want)
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if got, want := gaps(x.times("web.test", qtype)), []time.Duration{4 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
				t.Fatalf("%s queries after %v, want %v", dns.TypeToString[qtype], got, want)
			}
		}
	})
}

// TestResolveNow: ResolveNow brings the next resolution forward, to at
// once but never sooner than MinTTL after the previous one; calls in a
// burst make one resolution; a call when one is due sooner changes
// nothing; a call during a resolution asks for one after it; a call before
// Run is answered by its first resolution. It never blocks.
func TestResolveNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, srv, x := offlineSource(t, Config{Name: "web.test", Port: 80, Family: IPv4Only, MinTTL: 2 * time.Second}, nil)
		must(t, srv.SetA("web.test", 60, "10.0.0.1"))
		queries := func() int { return len(x.times("web.test", dns.TypeA)) }
		for range 10 {
			s.ResolveNow() // before Run: never blocks
		}
		start(t, s)
		synctest.Wait()
		began := time.Now()
		if n := queries(); n != 1 {
			t.Fatalf("%d queries at the start, want 1", n)
		}
		advance(30 * time.Second)
		if n := queries(); n != 1 {
			t.Fatalf("%d queries 30s into a 60s TTL after calls before Run, want 1: the first resolution answered them", n)
		}

		// A burst long after the last resolution: one resolution, at once.
		for range 100 {
			s.ResolveNow()
		}
		synctest.Wait()
		if n := queries(); n != 2 {
			t.Fatalf("%d queries after a burst of calls, want 2", n)
		}
		if at := x.times("web.test", dns.TypeA)[1]; !at.Equal(began.Add(30 * time.Second)) {
			t.Fatalf("resolution %v after the start, want at once (30s)", at.Sub(began))
		}

		// Right after it: the next one waits for MinTTL.
		s.ResolveNow()
		synctest.Wait()
		if st := s.State(); queries() != 2 || !st.Next.Equal(time.Now().Add(2*time.Second)) {
			t.Fatalf("%d queries, next due in %v; want it due at MinTTL (2s)", queries(), time.Until(st.Next))
		}
		s.ResolveNow() // coalesced with the one pending
		advance(2 * time.Second)
		advance(10 * time.Second)
		if got := gaps(x.times("web.test", dns.TypeA)); !slices.Equal(got, []time.Duration{30 * time.Second, 2 * time.Second}) {
			t.Fatalf("queries after %v, want 30s and 2s", got)
		}
		if st := s.State(); st.Next.Sub(st.Answer.At) < 54*time.Second {
			t.Fatalf("next due %v after the last answer, want the TTL (60s, 10%% jitter)", st.Next.Sub(st.Answer.At))
		}

		// Due sooner anyway (a failure's backoff below MinTTL): no change.
		srv.SetRcode("web.test", dns.RcodeServerFailure)
		s.ResolveNow() // 12s after the last resolution: at once
		synctest.Wait()
		n := queries() // the failure's retry is due in about 1s (the default backoff), before MinTTL
		next := s.State().Next
		s.ResolveNow()
		synctest.Wait()
		if queries() != n || !s.State().Next.Equal(next) {
			t.Fatalf("a call when a retry is due sooner moved it: %d queries, next %v, want %d, %v", queries(), s.State().Next, n, next)
		}
		srv.SetRcode("web.test", dns.RcodeSuccess)
		advance(5 * time.Second)

		// A call during a resolution: one more after it, at MinTTL.
		m := queries()
		x.mu.Lock()
		x.during = func() {
			x.mu.Lock()
			x.during = nil
			x.mu.Unlock()
			s.ResolveNow()
		}
		x.mu.Unlock()
		s.ResolveNow()
		synctest.Wait()
		advance(2 * time.Second)
		if got := gaps(x.times("web.test", dns.TypeA)[m-1:]); len(got) != 2 || got[1] != 2*time.Second {
			t.Fatalf("queries after %v, want one more MinTTL (2s) after the one asked for during a resolution", got)
		}
	})
}

// TestScheduleSRVTargetFamilyNegativeTTL: an SRV target with A records and
// no AAAA ones is refreshed at the TTL of its records, not at the negative
// TTL of its AAAA lookup (1s here): a family that is NODATA next to the
// other family's addresses contributes nothing, its TTL neither, as for a
// name of Type IP. A target that vanished altogether (every family
// negative) is asked again at the negative TTL.
func TestScheduleSRVTargetFamilyNegativeTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const name = "_x._tcp.svc.test"
		s, srv, x := offlineSource(t, Config{Name: name, Type: SRV, NXDomainHold: time.Hour}, nil)
		must(t, srv.SetA("a.test", 60, "10.0.0.1"))
		must(t, srv.SetA("b.test", 60, "10.0.0.2"))
		srv.SetSRV(name, 60, dnstest.SRV{Target: "a.test", Port: 8001, Glue: true}, dnstest.SRV{Target: "b.test", Port: 8002})
		start(t, s)
		synctest.Wait()
		st := s.State()
		if len(st.Addresses) != 2 || st.Answer.TTL != time.Minute || st.Next.Sub(st.Answer.At) < 54*time.Second {
			t.Fatalf("addresses %v, answer TTL %v, next refresh in %v; want the records' 60s", st.Addresses, st.Answer.TTL, st.Next.Sub(st.Answer.At))
		}
		srv.Remove("b.test")
		advance(time.Until(st.Next))
		st = s.State()
		if len(st.Addresses) != 2 || st.Answer.TTL != time.Second || st.Next.Sub(st.Answer.At) != time.Second {
			t.Fatalf("addresses %v, answer TTL %v, next refresh in %v; want b.test held and asked again at the negative TTL (1s)",
				st.Addresses, st.Answer.TTL, st.Next.Sub(st.Answer.At))
		}
		if n := len(x.times("b.test", dns.TypeAAAA)); n != 2 {
			t.Fatalf("%d AAAA queries for b.test, want 2", n)
		}
	})
}
