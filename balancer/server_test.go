package balancer

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// server is a loopback HTTP server that counts the connections it accepted
// and saw closed, and records the Host header and body length of every
// request. Its handler answers 200 unless replaced.
type server struct {
	IP   netip.Addr
	Port uint16

	srv    *http.Server
	opened atomic.Int64
	closed atomic.Int64

	mu      sync.Mutex
	handler http.HandlerFunc
	hosts   []string
	bodies  []int
}

func startServer(t *testing.T, ip string, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{IP: netip.MustParseAddr(ip), handler: h}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.opened.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.closed.Add(1)
			}
		},
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.srv.Serve(ln) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = s.srv.Close()
		}
		wg.Wait()
	})
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.hosts = append(s.hosts, r.Host)
	s.bodies = append(s.bodies, int(n))
	h := s.handler
	s.mu.Unlock()
	if h == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	h(w, r)
}

// requests returns the Host headers received so far, one per request.
func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hosts...)
}

// bodyLens returns the body length of every request received so far.
func (s *server) bodyLens() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.bodies...)
}

// open returns how many of its connections are open.
func (s *server) open() int64 { return s.opened.Load() - s.closed.Load() }

func (s *server) address(host string) resolver.Address {
	return resolver.Address{IP: s.IP, Port: s.Port, Hostname: host}
}

func (s *server) url(host, path string) string {
	return "http://" + host + ":" + strconv.Itoa(int(s.Port)) + path
}

// recorder records the reports of a Balancer's Calls, then passes them to
// the checker.
type recorder struct {
	*health.Checker
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) ReportHTTPStatus(a resolver.Address, code int) {
	r.add("status " + strconv.Itoa(code))
	r.Checker.ReportHTTPStatus(a, code)
}

func (r *recorder) ReportRetryAfter(a resolver.Address, code int, d time.Duration) {
	r.add("retry-after " + strconv.Itoa(code) + " " + d.String())
	r.Checker.ReportRetryAfter(a, code, d)
}

func (r *recorder) ReportTCPFailure(a resolver.Address) {
	r.add("tcp failure " + a.String())
	r.Checker.ReportTCPFailure(a)
}

func (r *recorder) reports() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// record makes b's Calls report through a recorder.
func record(b *Balancer) *recorder {
	r := &recorder{Checker: b.c}
	b.reports = r
	return r
}
