package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/metrics"
)

// metricsServer serves the vigil pipeline's Prometheus metrics.
type metricsServer struct {
	url  string
	col  *metrics.Collector
	mux  *http.ServeMux
	srv  *http.Server
	done chan struct{}

	mu      sync.Mutex
	idle    *sync.Cond // signalled when active drops to 0
	active  int        // handlers running
	closing bool       // no handler starts any more
}

// metricsShutdown is how long close lets scrapes in progress finish
// before it closes their connections.
const metricsShutdown = time.Second

// serveMetrics listens on addr and serves w's metrics at /metrics. Call
// close to stop it.
func serveMetrics(addr string, w *world) (*metricsServer, error) {
	if w.checker == nil {
		return nil, errors.New("metrics: no checker to follow")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	col := metrics.New(w.bus)
	col.AddChecker(w.checker)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	m := &metricsServer{
		url:  "http://" + ln.Addr().String() + "/metrics",
		col:  col,
		mux:  mux,
		done: make(chan struct{}),
	}
	m.idle = sync.NewCond(&m.mu)
	m.srv = &http.Server{Handler: http.HandlerFunc(m.serve)}
	go func() {
		defer close(m.done)
		_ = m.srv.Serve(ln)
	}()
	return m, nil
}

// serve runs one request, unless close has begun.
func (m *metricsServer) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		http.Error(w, "demo over", http.StatusServiceUnavailable)
		return
	}
	m.active++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.active--
		if m.active == 0 {
			m.idle.Broadcast()
		}
		m.mu.Unlock()
	}()
	m.mux.ServeHTTP(w, r)
}

// close stops the server: it lets scrapes in progress finish (for
// metricsShutdown at most), closes every connection, waits for every
// handler to return, and only then closes the collector.
func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdown)
	_ = m.srv.Shutdown(ctx)
	cancel()
	_ = m.srv.Close()
	<-m.done
	m.mu.Lock()
	m.closing = true
	for m.active > 0 {
		m.idle.Wait()
	}
	m.mu.Unlock()
	m.col.Close()
}
