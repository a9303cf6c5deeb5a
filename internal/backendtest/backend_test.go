package backendtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, c *http.Client, url, host string) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	return resp, nil
}

func TestGroupModes(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	bs, err := StartGroup(netip.MustParseAddr("127.0.0.2"), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(bs)
	if bs[0].Port != bs[2].Port || bs[0].IP == bs[1].IP {
		t.Logf("group did not share a port: %d %d", bs[0].Port, bs[2].Port)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b := bs[1]
	url := "http://" + b.HostPort() + "/x?y=1"

	b.SetStatus(503)
	b.SetHostStatus("special", 204)
	if r, err := get(t, c, url, "plain"); err != nil || r.StatusCode != 503 {
		t.Fatalf("status: %v %v", r, err)
	}
	if r, err := get(t, c, url, "special"); err != nil || r.StatusCode != 204 {
		t.Fatalf("host status: %v %v", r, err)
	}
	b.SetMode(Hang)
	if _, err := get(t, c, url, "plain"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	b.SetMode(Reset)
	if _, err := get(t, c, url, "plain"); !errors.Is(err, syscall.ECONNRESET) {
		t.Logf("reset: %v", err) // the client may see EOF first
		if err == nil {
			t.Fatal("reset: no error")
		}
	}
	b.SetMode(HugeBody)
	if r, err := get(t, c, url, "plain"); err != nil || r.StatusCode != 503 {
		t.Fatalf("huge: %v %v", r, err)
	}
	if got := b.Hosts(); got["plain"] < 3 || got["special"] != 1 {
		t.Fatalf("hosts %v", got)
	}
	if got := b.Paths(); int64(got["/x?y=1"]) != b.Requests() {
		t.Fatalf("paths %v, requests %d", got, b.Requests())
	}

	tb, err := Start(netip.MustParseAddr("127.0.0.5"), 0, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	ttr := &http.Transport{TLSClientConfig: ca.ClientConfig()}
	ttr.TLSClientConfig.ServerName = "svc.test"
	defer ttr.CloseIdleConnections()
	if r, err := get(t, &http.Client{Transport: ttr}, "https://"+tb.HostPort()+"/", "svc.test"); err != nil || r.StatusCode != 200 {
		t.Fatalf("tls: %v %v", r, err)
	}
	if tb.SNIs()["svc.test"] != 1 {
		t.Fatalf("snis %v", tb.SNIs())
	}
}

func TestTCP(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.6")
	l, err := ListenTCP(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Address("").HostPort())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for l.Accepted() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if l.Accepted() != 1 {
		t.Fatalf("accepted %d", l.Accepted())
	}
	p, err := RefusedPort(ip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(p)))); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refused: %v", err)
	}
}
