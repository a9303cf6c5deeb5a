package backendtest

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestHostileModes(t *testing.T) {
	b, err := Start(netip.MustParseAddr("127.0.0.7"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	url := "http://" + b.HostPort() + "/loop?x=1"

	b.SetStatus(307)
	b.SetMode(Redirect)
	resp, err := tr.RoundTrip(mustRequest(t, url))
	if err != nil || resp.StatusCode != 307 || resp.Header.Get("Location") != "/loop?x=1" {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	resp.Body.Close()

	b.SetStatus(200)
	b.SetMode(Endless)
	resp, err = tr.RoundTrip(mustRequest(t, url))
	if err != nil || resp.ContentLength != -1 {
		t.Fatalf("endless: %v %v", resp, err)
	}
	if n, err := io.CopyN(io.Discard, resp.Body, 8<<20); n != 8<<20 || err != nil {
		t.Fatalf("endless: read %d, %v", n, err)
	}
	resp.Body.Close()
	if s := b.BytesSent(); s < 8<<20 || s > 64<<20 {
		t.Fatalf("endless: sent %d", s)
	}

	b.SetStatus(200)
	b.SetDelay(20 * time.Millisecond)
	b.SetMode(Trickle)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	resp, err = tr.RoundTrip(mustRequest(t, url).WithContext(ctx))
	if err != nil || resp.ContentLength != HugeBodySize {
		t.Fatalf("trickle: %v %v", resp, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !errors.Is(err, context.DeadlineExceeded) || n < 2 || n > 10 {
		t.Fatalf("trickle: read %d, %v", n, err)
	}
}

func TestBadCertificates(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue([]string{"svc.test"}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartTLS(netip.MustParseAddr("127.0.0.8"), 0, expired)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tc := ca.ClientConfig()
	tc.ServerName = "svc.test"
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	_, err = tr.RoundTrip(mustRequest(t, "https://"+b.HostPort()+"/"))
	var ce x509.CertificateInvalidError
	if !errors.As(err, &ce) || ce.Reason != x509.Expired {
		t.Fatalf("expired: %v", err)
	}
	if b.SNIs()["svc.test"] != 1 {
		t.Fatalf("snis %v", b.SNIs())
	}
}

func TestTCPModes(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.9")
	silent, err := ListenTCPMode(ip, 0, Silent)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", silent.Address("").HostPort())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for silent.Open() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if silent.Open() != 1 {
		t.Fatalf("open %d", silent.Open())
	}
	_ = silent.Close() // closes the held connection
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v", err)
	}
	c.Close()

	reset, err := ListenTCPMode(ip, 0, ResetAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	defer reset.Close()
	c, err = net.Dial("tcp", reset.Address("").HostPort())
	if err != nil {
		return // on loopback the reset may beat the end of the dial
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reset: %v", err)
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
