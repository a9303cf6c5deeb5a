package vigilotel

import (
	"io"
	"net/netip"
	"strconv"
	"testing"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// Metrics follow a Client's bus: the requests of its upstream are counted,
// and its checker is read; Close before the Client's leaves nothing running.
func TestFollowsAClient(t *testing.T) {
	srv, err := dnstest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	bs, err := backendtest.StartGroup(netip.MustParseAddr("127.0.54.31"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendtest.CloseAll(bs) })
	if err := srv.SetA("client.test.", 0, bs[0].IP.String(), bs[1].IP.String()); err != nil {
		t.Fatal(err)
	}
	c, err := vigil.NewClient(vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "client.test", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	hostport := "client.test:" + strconv.Itoa(int(bs[0].Port))
	up, ok := c.Upstream(hostport)
	if !ok {
		t.Fatal("no upstream for " + hostport)
	}
	m, r := newMetrics(t, c.Bus())
	m.AddChecker(up.Checker())
	for range 10 {
		resp, err := c.Get("http://" + hostport + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	r.waitValue(t, "ten requests answered 2xx", equals(10), "vigil.requests",
		string(UpstreamKey), "client.test", string(RequestOutcomeKey), "2xx")
	r.waitValue(t, "two healthy targets", equals(2), "vigil.target.count", string(TargetStatusKey), "healthy")
	r.waitValue(t, "two resolved addresses", equals(2), "vigil.dns.address.count")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
