package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// maxBody is how much of a response body a probe reads before closing it.
const maxBody = 64 << 10

// maxHead bounds a response's status line and headers, 1xx interim
// responses included; a longer head is a TCP failure.
const maxHead = 64 << 10

// maxInterim is how many 1xx interim responses (100 Continue, 103 Early
// Hints) a probe skips before the final one, as net/http does.
const maxInterim = 5

// errHeadTooLong reports a response head beyond maxHead.
var errHeadTooLong = errors.New("response head over 64 KiB")

// sessionCacheSize bounds the TLS sessions a checker keeps for resumption,
// least recently used first out, whatever the number of server names.
const sessionCacheSize = 256

// httpProber sends HTTP(S) probes over HTTP/1.1 connections of its own. A
// target keeps its connection between probes (keep-alive), but nothing
// reads it while it idles: unlike net/http's pooled connections, which
// hold two goroutines each, an idle probe connection costs no goroutine.
// A connection the server closed meanwhile is found at the next probe,
// which is then sent once more on a new connection. The checker closes a
// target's connection when the target goes, when the probe settings change
// and when Run ends. TLS sessions are resumed from a bounded cache shared by
// the checker's targets.
type httpProber struct {
	base     *tls.Config // may be nil: verify against system roots
	sessions tls.ClientSessionCache
	dialer   func(ctx context.Context, network, addr string) (net.Conn, error) // tests only; nil: net.Dialer
}

func newHTTPProber(base *tls.Config) *httpProber {
	return &httpProber{base: base, sessions: tls.NewLRUClientSessionCache(sessionCacheSize)}
}

// probeConn is a target's kept connection and what it was opened for.
type probeConn struct {
	net.Conn
	key string // scheme, address and server name: a probe for another key cannot use it
}

// closeConn closes pc, if any.
func closeConn(pc *probeConn) {
	if pc != nil {
		_ = pc.Close()
	}
}

// probe sends GET sp.path to addr with the Host header and SNI of sp.host,
// else of addr.Hostname, follows no redirect, reads at most maxBody of the
// body and classifies the status, which it also returns (0 when no response
// arrived), with the reason for the outcome. It uses kept, the target's
// connection from its last probe, when it was opened for the same address
// and name, and returns the connection to keep for the next probe (nil when
// none may be kept); kept is closed when it is not returned.
func (p *httpProber) probe(ctx context.Context, sp spec, addr resolver.Address, kept *probeConn) (outcome, int, string, *probeConn) {
	req, err := probeRequest(ctx, sp, addr)
	if err != nil {
		closeConn(kept)
		return tcpFailure, 0, err.Error(), nil
	}
	sni := serverName(req.Host)
	key := req.URL.Scheme + "://" + addr.HostPort() + "/" + sni
	if kept != nil && kept.key != key {
		closeConn(kept)
		kept = nil
	}
	for {
		pc, reused := kept, kept != nil
		kept = nil
		if pc == nil {
			conn, err := p.dial(ctx, sp, addr, sni)
			if err != nil {
				o, why := classifyErr(ctx, err, sp.timeout)
				return o, 0, why, nil
			}
			pc = &probeConn{Conn: conn, key: key}
		}
		o, code, why, keep, err := p.exchange(ctx, sp, req, pc)
		switch {
		case err != nil && reused && code == 0 && ctx.Err() == nil:
			// The server closed the kept connection while it idled: once
			// more on a new one.
			_ = pc.Close()
			continue
		case err != nil:
			_ = pc.Close()
			o, why := classifyErr(ctx, err, sp.timeout)
			return o, code, why, nil
		case !keep:
			_ = pc.Close()
			return o, code, why, nil
		}
		return o, code, why, pc
	}
}

// exchange sends req on pc and reads the response. keep says whether pc may
// carry the next probe: the whole body was read and neither side asked to
// close.
func (p *httpProber) exchange(ctx context.Context, sp spec, req *http.Request, pc *probeConn) (o outcome, code int, why string, keep bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() { // ctx ended: the deadline is in the past
			keep = false
		}
		if keep {
			_ = pc.SetDeadline(time.Time{})
		}
	}()
	if err := req.Write(pc); err != nil {
		return 0, 0, "", false, err
	}
	// The head is read through a limit; the body gets maxBody more.
	lr := &io.LimitedReader{R: pc, N: maxHead}
	br := bufio.NewReader(lr)
	var resp *http.Response
	for range maxInterim + 1 {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			if lr.N <= 0 {
				err = errHeadTooLong
			}
			return 0, 0, "", false, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// A 1xx interim response: the final one follows (RFC 9110 15.2).
	}
	if resp.StatusCode < 200 {
		return 0, resp.StatusCode, "", false, fmt.Errorf("more than %d interim responses", maxInterim)
	}
	lr.N += maxBody + 1
	code, why = resp.StatusCode, statusReason(resp.StatusCode)+" from GET "+sp.path
	o = classifyStatus(code, sp.healthy, sp.unhealthy)
	// The body is not closed: closing it would read it to its end, however
	// long; reading stops after maxBody and the connection is closed instead.
	var n int64
	if sp.expectBody != "" && o == success {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		n = int64(len(body))
		if !bytes.Contains(body, []byte(sp.expectBody)) {
			o, why = httpFailure, why+", body without "+quote(sp.expectBody)
		}
	} else {
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody+1))
	}
	// A body that fails to arrive does not change what the status said;
	// the connection is not kept.
	return o, code, why, err == nil && n <= maxBody && !resp.Close && code != http.StatusSwitchingProtocols, nil
}

// dial connects to addr, over TLS with server name sni for HTTPS (the IP
// when sni is empty, so that the certificate is checked for it).
func (p *httpProber) dial(ctx context.Context, sp spec, addr resolver.Address, sni string) (net.Conn, error) {
	dial := p.dialer
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", addr.HostPort())
	if err != nil || sp.typ != HTTPS {
		return conn, err
	}
	tconn := tls.Client(conn, p.tlsConfig(sni, addr))
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

// probeRequest builds the GET of sp.path that probes addr, with the Host
// header of sp.host as given, else of addr.Hostname with the probed port
// when it is not the scheme's default (RFC 9110, 7.2: the Host header is
// the target URI's authority), else, left empty, the URL's IP:port; and
// sp's headers.
func probeRequest(ctx context.Context, sp spec, addr resolver.Address) (*http.Request, error) {
	host := sp.host
	if host == "" {
		host = strings.TrimSuffix(addr.Hostname, ".")
		if def := uint16(80); host != "" {
			if sp.typ == HTTPS {
				def = 443
			}
			if addr.Port != def {
				host = net.JoinHostPort(host, strconv.Itoa(int(addr.Port)))
			}
		}
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
	req.Header.Set("User-Agent", "vigil-health")
	for k, vs := range sp.headers {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	return req, nil
}

// serverName returns the TLS server name of a request for host: host
// without a port, or empty for an IP address (with or without a zone),
// whose certificate is checked for the IP itself.
func serverName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	return host
}
