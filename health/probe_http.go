package health

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// maxBody is how much of a response body a probe reads before closing it.
const maxBody = 64 << 10

// transports holds the HTTP transports of one checker: one for plain HTTP
// and one per TLS server name, so that a pooled TLS connection is only ever
// reused for the name it was opened with (two hostnames on one IP:port are
// two targets with their own SNI). Requests go to the target's IP, so the
// pool of each transport is keyed by IP:port. Keep-alive is on; Run closes
// idle connections when it ends.
type transports struct {
	base *tls.Config // may be nil: verify against system roots

	mu     sync.Mutex
	plain  *http.Transport
	byName map[string]*http.Transport
}

func newTransports(base *tls.Config) *transports {
	return &transports{base: base, byName: make(map[string]*http.Transport)}
}

func newTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 0, // the probe's context bounds it
		DisableCompression:  true,
		MaxIdleConns:        0, // no global limit: one idle connection per target is the point
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
}

// get returns the transport for TLS server name sni, or the plain one.
func (ts *transports) get(tlsOn bool, sni string) *http.Transport {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !tlsOn {
		if ts.plain == nil {
			ts.plain = newTransport(nil)
		}
		return ts.plain
	}
	tr := ts.byName[sni]
	if tr == nil {
		var tc *tls.Config
		if ts.base != nil {
			tc = ts.base.Clone()
		} else {
			tc = &tls.Config{}
		}
		tc.ServerName = sni // empty: the IP is verified
		tc.NextProtos = nil
		if tc.ClientSessionCache == nil {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(0)
		}
		tr = newTransport(tc)
		ts.byName[sni] = tr
	}
	return tr
}

// closeIdle closes every idle connection.
func (ts *transports) closeIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.plain != nil {
		ts.plain.CloseIdleConnections()
	}
	for _, tr := range ts.byName {
		tr.CloseIdleConnections()
	}
}

// probe sends GET sp.path to addr with the Host header and SNI of sp.host,
// else of addr.Hostname, follows no redirect, reads at most maxBody of the
// body and classifies the status, which it also returns (0 when no response
// arrived).
func (ts *transports) probe(ctx context.Context, sp spec, addr resolver.Address) (outcome, int) {
	req, err := probeRequest(ctx, sp, addr)
	if err != nil {
		return tcpFailure, 0
	}
	resp, err := ts.get(sp.typ == HTTPS, serverName(req.Host)).RoundTrip(req)
	if err != nil {
		return classifyErr(ctx, err), 0
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	_ = resp.Body.Close()
	return classifyStatus(resp.StatusCode, sp.healthy, sp.unhealthy), resp.StatusCode
}

// probeRequest builds the GET of sp.path that probes addr, with the Host
// header of sp.host, else of addr.Hostname (else, left empty, the URL's
// IP:port).
func probeRequest(ctx context.Context, sp spec, addr resolver.Address) (*http.Request, error) {
	host := sp.host
	if host == "" {
		host = strings.TrimSuffix(addr.Hostname, ".")
	}
	scheme := "http"
	if sp.typ == HTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr.HostPort()+sp.path, nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "vigil-health")
	return req, nil
}

// serverName returns host without a port.
func serverName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
