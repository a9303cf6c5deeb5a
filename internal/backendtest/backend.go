package backendtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// Mode is how a backend answers.
type Mode int

const (
	// Normal answers with the backend's status code (200 unless set).
	Normal Mode = iota
	// Hang never answers: the request waits until the client gives up or
	// the backend is closed.
	Hang
	// Slow answers with the status code after the backend's delay.
	Slow
	// Reset resets the connection (TCP RST) without answering.
	Reset
	// Close closes the connection without answering.
	Close
	// HugeBody answers with the status code and a body of HugeBodySize
	// bytes, sent until the client stops reading.
	HugeBody
	// Trickle answers with the status code and headers announcing a body of
	// HugeBodySize bytes, then sends one byte of it per delay (SetDelay;
	// 50ms when unset) until the client goes away.
	Trickle
	// Endless answers with the status code and a chunked body of
	// EndlessBodySize bytes, generated from one small buffer and sent as
	// fast as the client reads, until it stops reading.
	Endless
	// Redirect answers with the status code (set it to a 3xx) and a
	// Location header pointing at SetLocation's URL, else at the request's
	// own URL: a client that follows redirects then loops.
	Redirect
)

// HugeBodySize is the size of a HugeBody answer.
const HugeBodySize = 64 << 20

// EndlessBodySize is the size of an Endless answer: far more than any
// client should read.
const EndlessBodySize = 1 << 30

// defaultTrickle is the delay between two bytes of a Trickle answer when no
// delay is set.
const defaultTrickle = 50 * time.Millisecond

// Backend is an HTTP or HTTPS server on one loopback address.
type Backend struct {
	IP   netip.Addr
	Port uint16
	TLS  bool // HTTPS, with certificates from the CA given to Start

	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	wg   sync.WaitGroup

	requests atomic.Int64
	conns    atomic.Int64
	open     atomic.Int64 // connections accepted and not closed yet
	sent     atomic.Int64 // body bytes written by HugeBody, Trickle and Endless

	mu         sync.Mutex
	mode       Mode
	status     int
	delay      time.Duration
	hostStatus map[string]int
	pathStatus map[string]int
	body       string
	location   string                    // Redirect's Location; empty: the request's own URL
	headers    map[string]map[string]int // header name -> value -> count
	hosts      map[string]int
	snis       map[string]int
	paths      map[string]int
}

// Start starts a backend on ip:port (port 0: any free port). With a non-nil
// ca it serves HTTPS with a certificate for the requested server name.
func Start(ip netip.Addr, port uint16, ca *CA) (*Backend, error) {
	if ca == nil {
		return start(ip, port, nil)
	}
	return start(ip, port, func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := h.ServerName
		if name == "" {
			name = ip.String()
		}
		return ca.leaf(name)
	})
}

// StartTLS starts an HTTPS backend on ip:port (port 0: any free port) that
// presents cert whatever server name is asked for: a certificate for
// another name, an expired one or a self-signed one makes a backend with a
// bad certificate.
func StartTLS(ip netip.Addr, port uint16, cert *tls.Certificate) (*Backend, error) {
	if cert == nil {
		return nil, errors.New("backendtest: no certificate")
	}
	return start(ip, port, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
}

// start starts a backend, serving HTTPS when getCert is not nil.
func start(ip netip.Addr, port uint16, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*Backend, error) {
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("backendtest: %s is not a loopback address", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	b := &Backend{
		IP:         ip,
		Port:       uint16(ln.Addr().(*net.TCPAddr).Port),
		TLS:        getCert != nil,
		done:       make(chan struct{}),
		status:     http.StatusOK,
		hostStatus: make(map[string]int),
		pathStatus: make(map[string]int),
		headers:    make(map[string]map[string]int),
		hosts:      make(map[string]int),
		snis:       make(map[string]int),
		paths:      make(map[string]int),
	}
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(b.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				b.conns.Add(1)
				b.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				b.open.Add(-1)
			}
		},
	}
	b.ln = ln
	if getCert != nil {
		b.ln = tls.NewListener(ln, &tls.Config{
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
				b.mu.Lock()
				b.snis[h.ServerName]++
				b.mu.Unlock()
				return getCert(h)
			},
		})
	}
	b.wg.Go(func() { _ = b.srv.Serve(b.ln) })
	return b, nil
}

// StartGroup starts n backends on consecutive addresses from first, sharing
// one port when it is free on all of them (else each gets its own).
func StartGroup(first netip.Addr, n int, ca *CA) ([]*Backend, error) {
	for range 20 {
		bs, err := startOnOnePort(first, n, ca)
		if err == nil {
			return bs, nil
		}
	}
	var bs []*Backend
	ip := first
	for range n {
		b, err := Start(ip, 0, ca)
		if err != nil {
			CloseAll(bs)
			return nil, err
		}
		bs = append(bs, b)
		ip = ip.Next()
	}
	return bs, nil
}

func startOnOnePort(first netip.Addr, n int, ca *CA) ([]*Backend, error) {
	var bs []*Backend
	var port uint16
	ip := first
	for range n {
		b, err := Start(ip, port, ca)
		if err != nil {
			CloseAll(bs)
			return nil, err
		}
		port = b.Port
		bs = append(bs, b)
		ip = ip.Next()
	}
	return bs, nil
}

// CloseAll closes every backend of bs.
func CloseAll(bs []*Backend) {
	for _, b := range bs {
		_ = b.Close()
	}
}

// Close stops the backend, ending hanging and slow requests, and waits for
// its goroutines.
func (b *Backend) Close() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	close(b.done)
	err := b.srv.Close()
	b.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Address returns the backend as a resolver.Address for hostname.
func (b *Backend) Address(hostname string) resolver.Address {
	return resolver.Address{IP: b.IP, Port: b.Port, Hostname: hostname}
}

// HostPort returns "ip:port".
func (b *Backend) HostPort() string {
	return net.JoinHostPort(b.IP.String(), strconv.Itoa(int(b.Port)))
}

// SetStatus makes the backend answer normally with code.
func (b *Backend) SetStatus(code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode, b.status = Normal, code
}

// SetHostStatus makes requests with Host header host answer with code,
// whatever the mode; code 0 removes the override.
func (b *Backend) SetHostStatus(host string, code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if code == 0 {
		delete(b.hostStatus, host)
		return
	}
	b.hostStatus[host] = code
}

// SetPathStatus makes requests for path (the URL path, without the query)
// answer with code, whatever the mode and the Host header; code 0 removes
// the override. A health endpoint can fail while the traffic succeeds.
func (b *Backend) SetPathStatus(path string, code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if code == 0 {
		delete(b.pathStatus, path)
		return
	}
	b.pathStatus[path] = code
}

// SetLocation sets where Redirect answers point; empty: the request's own
// URL.
func (b *Backend) SetLocation(url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.location = url
}

func (b *Backend) redirectTo() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.location
}

// SetBody sets the body of Normal answers (empty by default).
func (b *Backend) SetBody(body string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.body = body
}

// Header returns the values received in header name, with their counts.
func (b *Backend) Header(name string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.headers[http.CanonicalHeaderKey(name)])
}

// SetMode sets how the backend answers; the status code stays.
func (b *Backend) SetMode(m Mode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

// SetDelay sets the delay of Slow answers.
func (b *Backend) SetDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = d
}

// Requests returns how many requests the backend received.
func (b *Backend) Requests() int64 { return b.requests.Load() }

// BytesSent returns how many body bytes HugeBody, Trickle and Endless
// answers have written so far (into the connection's buffers, which may
// hold some the client never read).
func (b *Backend) BytesSent() int64 { return b.sent.Load() }

// Conns returns how many connections the backend accepted.
func (b *Backend) Conns() int64 { return b.conns.Load() }

// OpenConns returns how many connections are open now (accepted and not yet
// closed by either side).
func (b *Backend) OpenConns() int64 { return b.open.Load() }

// Hosts returns the Host headers received, with their counts.
func (b *Backend) Hosts() map[string]int { return b.copyOf(b.hosts) }

// SNIs returns the TLS server names received, with their counts ("" for
// none).
func (b *Backend) SNIs() map[string]int { return b.copyOf(b.snis) }

// Paths returns the request paths received, with their counts.
func (b *Backend) Paths() map[string]int { return b.copyOf(b.paths) }

func (b *Backend) copyOf(m map[string]int) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(m)
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.hosts[r.Host]++
	b.paths[r.URL.RequestURI()]++
	for k, vs := range r.Header {
		m := b.headers[k]
		if m == nil {
			m = make(map[string]int)
			b.headers[k] = m
		}
		for _, v := range vs {
			m[v]++
		}
	}
	mode, status, delay, body := b.mode, b.status, b.delay, b.body
	if code, ok := b.hostStatus[r.Host]; ok {
		mode, status = Normal, code
	}
	if code, ok := b.pathStatus[r.URL.Path]; ok {
		mode, status = Normal, code
	}
	b.mu.Unlock()
	b.requests.Add(1)

	switch mode {
	case Hang:
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
		return
	case Slow:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-b.done:
			return
		}
	case Reset, Close:
		hijack(w, mode == Reset)
		return
	case HugeBody:
		w.Header().Set("Content-Length", strconv.Itoa(HugeBodySize))
		w.WriteHeader(status)
		b.stream(w, HugeBodySize)
		return
	case Endless:
		w.WriteHeader(status) // no Content-Length: chunked
		b.stream(w, EndlessBodySize)
		return
	case Trickle:
		b.trickle(w, r, status, delay)
		return
	case Redirect:
		loc := b.redirectTo()
		if loc == "" {
			loc = r.URL.RequestURI()
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// stream writes size bytes of body from one reused buffer, stopping early
// when the client stops reading or the backend closes.
func (b *Backend) stream(w http.ResponseWriter, size int) {
	chunk := make([]byte, 32<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		n, err := w.Write(chunk)
		b.sent.Add(int64(n))
		if err != nil {
			return
		}
		select {
		case <-b.done:
			return
		default:
		}
	}
}

// trickle sends the headers of a HugeBodySize answer at once and then one
// byte of body per delay.
func (b *Backend) trickle(w http.ResponseWriter, r *http.Request, status int, delay time.Duration) {
	if delay <= 0 {
		delay = defaultTrickle
	}
	w.Header().Set("Content-Length", strconv.Itoa(HugeBodySize))
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(delay)
	defer tick.Stop()
	for range HugeBodySize {
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-b.done:
			return
		}
		n, err := w.Write([]byte{'.'})
		b.sent.Add(int64(n))
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}

// hijack takes the connection over and closes it, with a TCP reset when
// reset is set.
func hijack(w http.ResponseWriter, reset bool) {
	h, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := h.Hijack()
	if err != nil {
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
