package resolver

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-go/vigil/internal/dnstest"
)

// TestState: State tells the name, the types asked, the last answer with
// its age and TTL left, the set in effect, the failures in a row and the
// last error (kept after a recovery), the next resolution, and the search
// candidate followed; it is a copy the caller owns.
func TestState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		s, srv, _ := offlineSource(t, Config{
			Name: "Web", Port: 80, Search: []string{"a.test", "B.Test."}, NXDomainHold: time.Minute,
			Backoff: Backoff{Initial: 5 * time.Second, Jitter: -1},
		}, bus)
		st := s.State()
		want := []string{"web.a.test", "web.b.test", "web"}
		if st.Name != "web" || !slices.Equal(st.Types, []string{"A", "AAAA"}) || st.Running || !slices.Equal(st.Candidates, want) ||
			st.Following != "" || !st.Next.IsZero() || st.Version != 0 || len(st.Addresses) != 0 || !st.Answer.At.IsZero() {
			t.Fatalf("before Run: %+v", st)
		}
		must(t, srv.SetA("web.b.test", 30, "10.0.0.2"))
		must(t, srv.SetAAAA("web.b.test", 20, "fd00::2"))
		start(t, s)
		synctest.Wait()
		began := time.Now()
		advance(5 * time.Second)
		st = s.State()
		set := addrs("web.b.test", 80, "10.0.0.2", "fd00::2")
		if !st.Running || st.Following != "web.b.test" || !slices.Equal(st.Addresses, set) || !slices.Equal(st.Answer.Addresses, set) ||
			!st.Answer.At.Equal(began) || st.Answer.TTL != 20*time.Second || st.Answer.TTLLeft != 15*time.Second || st.Version == 0 {
			t.Fatalf("after the first answer: %+v", st)
		}
		if d := st.Next.Sub(began); d < 18*time.Second || d > 20*time.Second {
			t.Fatalf("next resolution %v after the answer, want at its 20s TTL (10%% jitter)", d)
		}
		if st.Failures != 0 || st.Err != nil || !st.ErrAt.IsZero() {
			t.Fatalf("failures in a fresh state: %+v", st)
		}
		st.Addresses[0].Port, st.Answer.Addresses[0].Port, st.Candidates[0], st.Types[0] = 1, 1, "x", "x"
		if again := s.State(); again.Addresses[0].Port != 80 || again.Answer.Addresses[0].Port != 80 || again.Candidates[0] != want[0] || again.Types[0] != "A" {
			t.Fatalf("State shares its slices with the Source: %+v", again)
		}

		// Failures: counted in a row; the set stays.
		srv.SetRcode("web.b.test", dns.RcodeServerFailure)
		advance(time.Until(st.Next) + 5*time.Second) // the refresh and one retry fail
		st = s.State()
		if st.Failures != 2 || !errors.Is(st.Err, ErrServerFailure) || !st.ErrAt.Equal(time.Now()) || !slices.Equal(st.Addresses, set) ||
			!st.Next.Equal(time.Now().Add(10*time.Second)) || st.Answer.TTLLeft != 0 {
			t.Fatalf("after two failures: %+v", st)
		}
		failedAt := st.ErrAt
		srv.SetRcode("web.b.test", dns.RcodeSuccess)
		must(t, srv.SetA("web.b.test", 30, "10.0.0.3"))
		advance(10 * time.Second)
		st = s.State()
		if st.Failures != 0 || !errors.Is(st.Err, ErrServerFailure) || !st.ErrAt.Equal(failedAt) ||
			!slices.Equal(ips(st.Answer.Addresses), []string{"10.0.0.3", "fd00::2"}) || !st.Answer.At.Equal(time.Now()) {
			t.Fatalf("after the recovery: %+v", st)
		}

		// The followed candidate stops existing: none is followed, the
		// walk finds another.
		srv.Remove("web.b.test")
		must(t, srv.SetA("web", 30, "10.9.9.9"))
		advance(time.Until(st.Next))
		if st = s.State(); st.Following != "web" || !slices.Equal(ips(st.Answer.Addresses), []string{"10.9.9.9"}) {
			t.Fatalf("after web.b.test vanished: %+v", st)
		}
		srv.Remove("web")
		advance(time.Until(s.State().Next))
		if st = s.State(); st.Following != "" || !errors.Is(st.Err, ErrNXDomain) || st.Failures != 1 || len(st.Addresses) != 1 {
			t.Fatalf("after every candidate vanished: %+v, want none followed and the set held", st)
		}
	})
	t.Run("SRV types", func(t *testing.T) {
		for _, tt := range []struct {
			cfg  Config
			want []string
		}{
			{Config{Name: "_x._tcp.test", Type: SRV}, []string{"SRV", "A", "AAAA"}},
			{Config{Name: "_x._tcp.test", Type: SRV, Family: IPv6Only}, []string{"SRV", "AAAA"}},
			{Config{Name: "web.test", Type: AAAA, Port: 80}, []string{"AAAA"}},
			{Config{Name: "web.test", Type: IP, Port: 80, Family: IPv4Only}, []string{"A"}},
		} {
			tt.cfg.Servers = []string{"192.0.2.53"}
			s, err := NewSource(tt.cfg, nil)
			must(t, err)
			if got := s.State().Types; !slices.Equal(got, tt.want) {
				t.Errorf("%v %v: types %v, want %v", tt.cfg.Type, tt.cfg.Family, got, tt.want)
			}
		}
	})
}

// TestStateVersionFromBus: a Source whose first set equals the latest
// Change on the bus publishes nothing, and its State carries that Change's
// Version.
func TestStateVersionFromBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t)
		srv := dnstest.New()
		must(t, srv.SetA("web.test", 60, "10.0.0.1"))
		cfg := Config{Name: "web.test", Port: 80, Family: IPv4Only, Servers: []string{"192.0.2.53"}}
		first, err := NewSource(cfg, bus, withExchanger(&offline{srv: srv}))
		must(t, err)
		start(t, first)
		synctest.Wait()
		v := first.State().Version
		second, err := NewSource(cfg, bus, withExchanger(&offline{srv: srv}))
		must(t, err)
		start(t, second)
		synctest.Wait()
		if got := second.State().Version; v == 0 || got != v {
			t.Fatalf("version %d, want %d, the latest Change's", got, v)
		}
	})
}
