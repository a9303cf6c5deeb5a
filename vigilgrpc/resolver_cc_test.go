package vigilgrpc

import (
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// recordingCC is a resolver.ClientConn that records the states it is given
// and rejects the first reject of them.
type recordingCC struct {
	gresolver.ClientConn

	mu       sync.Mutex
	reject   int
	states   []gresolver.State
	rejected int
}

func (c *recordingCC) UpdateState(s gresolver.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rejected < c.reject {
		c.rejected++
		return errors.New("rejected by the test")
	}
	c.states = append(c.states, s)
	return nil
}

func (c *recordingCC) ReportError(error) {}

func (c *recordingCC) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func (c *recordingCC) taken() (states, rejected int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.states), c.rejected
}

// buildOn builds a resolver of "vigil:///api.internal:<port>" on cc through
// a Builder whose upstreams ask d, with a long TTL and a short MinTTL, and
// probe nothing.
func buildOn(t *testing.T, d *dnstest.Server, cc gresolver.ClientConn, log *slog.Logger) gresolver.Resolver {
	t.Helper()
	b, err := NewBuilder(vigil.Config{
		Port:     50051,
		Resolver: resolver.Config{Servers: []string{d.Addr()}, MinTTL: 20 * time.Millisecond},
		Health: health.Config{Active: health.Active{
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		}},
	}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("vigil:///api.internal:" + strconv.Itoa(50051))
	r, err := b.Build(gresolver.Target{URL: *u}, cc, gresolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// ResolveNow brings the next resolution forward, long before the TTL runs
// out.
func TestResolveNowResolvesEarly(t *testing.T) {
	d, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.SetA("api.internal", 3600, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cc := &recordingCC{}
	r := buildOn(t, d, cc, slog.New(slog.DiscardHandler))
	testutil.Eventually(t, 10*time.Second, "the first state", func() bool { n, _ := cc.taken(); return n > 0 })
	before := d.QueriesFor("api.internal.", dns.TypeA)
	r.ResolveNow(gresolver.ResolveNowOptions{})
	testutil.Eventually(t, 10*time.Second, "a resolution asked by ResolveNow (the TTL is an hour)", func() bool {
		return d.QueriesFor("api.internal.", dns.TypeA) > before
	})
}

// A state the ClientConn rejects is logged and given again, not dropped.
func TestRejectedStateIsGivenAgain(t *testing.T) {
	d, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.SetA("api.internal", 3600, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	cc := &recordingCC{reject: 2}
	buildOn(t, d, cc, slog.New(slog.NewTextHandler(&logs, nil)))
	testutil.Eventually(t, 10*time.Second, "the state taken after two rejections", func() bool {
		n, rejected := cc.taken()
		return n == 1 && rejected == 2
	})
	if got := logs.String(); !strings.Contains(got, "rejected the addresses") || !strings.Contains(got, "rejected by the test") {
		t.Fatalf("the rejection was not logged with its error:\n%s", got)
	}
}
