package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// maxBody is how much of a response body a probe reads before closing it.
const maxBody = 64 << 10

// sessionCacheSize bounds the TLS sessions a checker keeps for resumption,
// least recently used first out, whatever the number of server names.
const sessionCacheSize = 256

// httpProber sends HTTP(S) probes. Each probe opens its own connection and
// closes it when the response is read: no connection idles between probes,
// so no goroutine waits on one, none outlives its target and removing a
// target leaves nothing to close (lua-resty-healthcheck and HAProxy probe
// the same way). TLS sessions are resumed from a bounded cache shared by
// the checker's targets.
type httpProber struct {
	base     *tls.Config // may be nil: verify against system roots
	sessions tls.ClientSessionCache
	dialer   func(ctx context.Context, network, addr string) (net.Conn, error) // tests only; nil: net.Dialer
}

func newHTTPProber(base *tls.Config) *httpProber {
	return &httpProber{base: base, sessions: tls.NewLRUClientSessionCache(sessionCacheSize)}
}

// probe sends GET sp.path to addr with the Host header and SNI of sp.host,
// else of addr.Hostname, follows no redirect, reads at most maxBody of the
// body and classifies the status, which it also returns (0 when no response
// arrived), with the reason for the outcome.
func (p *httpProber) probe(ctx context.Context, sp spec, addr resolver.Address) (outcome, int, string) {
	req, err := probeRequest(ctx, sp, addr)
	if err != nil {
		return tcpFailure, 0, err.Error()
	}
	conn, err := p.dial(ctx, sp, addr, serverName(req.Host))
	if err != nil {
		o, why := classifyErr(ctx, err, sp.timeout)
		return o, 0, why
	}
	defer func() { _ = conn.Close() }()
	if err := req.Write(conn); err != nil {
		o, why := classifyErr(ctx, err, sp.timeout)
		return o, 0, why
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		o, why := classifyErr(ctx, err, sp.timeout)
		return o, 0, why
	}
	// The body is not closed: closing it would read it to its end to reuse
	// the connection, which is closed instead.
	o := classifyStatus(resp.StatusCode, sp.healthy, sp.unhealthy)
	why := statusReason(resp.StatusCode)
	if sp.expectBody == "" || o != success {
		_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
		return o, resp.StatusCode, why
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		o, why := classifyErr(ctx, err, sp.timeout)
		return o, resp.StatusCode, why
	}
	if !bytes.Contains(body, []byte(sp.expectBody)) {
		return httpFailure, resp.StatusCode, why + ", body without " + quote(sp.expectBody)
	}
	return o, resp.StatusCode, why
}

// dial connects to addr, over TLS with server name sni for HTTPS (the IP
// when sni is empty, so that the certificate is checked for it). The
// connection's deadline is ctx's, and it is cut when ctx ends.
func (p *httpProber) dial(ctx context.Context, sp spec, addr resolver.Address, sni string) (net.Conn, error) {
	dial := p.dialer
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", addr.HostPort())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	wrapped := &cutConn{Conn: conn, stop: stop}
	if sp.typ != HTTPS {
		return wrapped, nil
	}
	tc := p.tlsConfig(sni, addr)
	tconn := tls.Client(wrapped, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		_ = tconn.Close()
		return nil, err
	}
	return tconn, nil
}

// tlsConfig returns the configuration of one HTTPS probe.
func (p *httpProber) tlsConfig(sni string, addr resolver.Address) *tls.Config {
	var tc *tls.Config
	if p.base != nil {
		tc = p.base.Clone()
	} else {
		tc = &tls.Config{}
	}
	if sni == "" {
		sni = addr.IP.WithZone("").String()
	}
	tc.ServerName = sni
	tc.NextProtos = []string{"http/1.1"}
	if tc.ClientSessionCache == nil {
		tc.ClientSessionCache = p.sessions
	}
	return tc
}

// cutConn stops the context watch of its connection when closed.
type cutConn struct {
	net.Conn
	stop func() bool
}

func (c *cutConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// probeRequest builds the GET of sp.path that probes addr, with the Host
// header of sp.host, else of addr.Hostname (else, left empty, the URL's
// IP:port), sp's headers and "Connection: close".
func probeRequest(ctx context.Context, sp spec, addr resolver.Address) (*http.Request, error) {
	host := sp.host
	if host == "" {
		host = strings.TrimSuffix(addr.Hostname, ".")
	}
	u, err := url.ParseRequestURI(sp.path)
	if err != nil {
		return nil, err
	}
	u.Scheme = "http"
	if sp.typ == HTTPS {
		u.Scheme = "https"
	}
	u.Host = addr.HostPort() // a zone stays in Host, where url escapes it
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	req.Close = true
	req.Header.Set("User-Agent", "vigil-health")
	for k, vs := range sp.headers {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	return req, nil
}

// serverName returns host without a port.
func serverName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
