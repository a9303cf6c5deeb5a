package vigil_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// slowProbes are probes whose timeout is longer than a slow backend's
// answer: a checker that knows nothing of such a backend holds it healthy
// (the initial status) until its first probe ends, seconds later.
func slowProbes() health.Config {
	return health.Config{Active: health.Active{
		Path: "/healthz", Timeout: 5 * time.Second,
		Healthy:   health.HealthyRules{Interval: 50 * time.Millisecond},
		Unhealthy: health.UnhealthyRules{Interval: 50 * time.Millisecond},
	}}
}

// turnSlowAndFailing makes b answer everything with 500, seconds late.
func turnSlowAndFailing(b *backendtest.Backend) {
	b.SetStatus(http.StatusInternalServerError)
	b.SetDelay(3 * time.Second)
	b.SetMode(backendtest.Slow)
}

// An upstream the Client made from its template and stopped when idle
// comes back, at the next request for its host, from the state the stopped
// one left: a backend found unhealthy, whose probes are now slow, gets no
// request, where a fresh upstream would hold it healthy until its first
// probe ends. Without the Client's memory (Memory < 0) it does get some,
// which shows the test can fail.
func TestClientIdleStopKeepsState(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory int
		want   bool // requests reach the failing backend
	}{
		{"with the client's memory", 0, false},
		{"without it", -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dnsServer(t)
			bs := backends(t, "127.0.94.1", 2)
			name := "idle-" + strconv.Itoa(tc.memory+1) + ".r9.test"
			if err := d.SetA(name, 60, ips(bs)...); err != nil {
				t.Fatal(err)
			}
			c, err := vigil.NewClient(vigil.ClientConfig{
				Defaults:    vigil.Config{Resolver: resolver.Config{Servers: []string{d.Addr()}}, Health: slowProbes()},
				Template:    &vigil.Config{},
				IdleTimeout: 100 * time.Millisecond,
				Memory:      tc.memory,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			url := "http://" + name + ":" + strconv.Itoa(int(bs[0].Port)) + "/work"
			hostport := name + ":" + strconv.Itoa(int(bs[0].Port))
			bad := bs[1].Address(name)

			if _, err := get(t, c.Client, url); err != nil {
				t.Fatal(err)
			}
			bs[1].SetStatus(http.StatusInternalServerError)
			testutil.Eventually(t, 10*time.Second, "the failing backend unhealthy", func() bool {
				_, _ = get(t, c.Client, url) // keeps the upstream from going idle
				u, ok := c.Upstream(hostport)
				return ok && u.Checker().Status(bad) == health.Unhealthy
			})
			turnSlowAndFailing(bs[1])
			testutil.Eventually(t, 10*time.Second, "the idle upstream stopped", func() bool {
				_, ok := c.Upstream(hostport)
				return !ok
			})

			before := bs[1].Paths()["/work"]
			for i := 0; i < 10 && bs[1].Paths()["/work"] == before; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _ = do(ctx, c.Client, url)
				cancel()
			}
			if got := bs[1].Paths()["/work"] > before; got != tc.want {
				t.Fatalf("requests reached the backend found unhealthy before the idle stop: %v, want %v (%d requests)",
					got, tc.want, bs[1].Paths()["/work"]-before)
			}
		})
	}
}

// A user's upstream given a Memory leaves its state there when its Run
// ends; a new upstream of the same name given the same Memory starts from
// it: the failing backend is unhealthy as soon as it is a target, before
// its (slow) first probe ends. Without the Memory, it starts healthy.
func TestWithMemoryCarriesStateToTheNextUpstream(t *testing.T) {
	d := dnsServer(t)
	bs := backends(t, "127.0.94.11", 2)
	if err := d.SetA("user.r9.test", 60, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	cfg := vigil.Config{Name: "user.r9.test", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{d.Addr()}}, Health: slowProbes()}
	bad := bs[1].Address("user.r9.test")
	mem := health.NewMemory(0)

	first, err := vigil.New(cfg, vigil.WithMemory(mem))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	bs[1].SetStatus(http.StatusInternalServerError)
	testutil.Eventually(t, 10*time.Second, "the failing backend unhealthy", func() bool {
		return first.Checker().Status(bad) == health.Unhealthy
	})
	turnSlowAndFailing(bs[1])
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		opts []vigil.Option
		want health.Status
	}{
		{"the same memory", []vigil.Option{vigil.WithMemory(mem)}, health.Unhealthy},
		{"no memory", nil, health.Healthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, err := vigil.New(cfg, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			run(t, next)
			testutil.Eventually(t, 10*time.Second, "both addresses targets", func() bool {
				return len(next.Checker().Targets()) == 2
			})
			tg, _ := next.Checker().Target(bad)
			if tg.Status != tc.want {
				t.Fatalf("the failing backend is %v before its first probe ended (last probe %+v), want %v", tg.Status, tg.Probe, tc.want)
			}
		})
	}
}
