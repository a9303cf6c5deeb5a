package main

import (
	"errors"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/metrics"
)

// metricsServer serves the vigil pipeline's Prometheus metrics.
type metricsServer struct {
	url  string
	col  *metrics.Collector
	srv  *http.Server
	done chan struct{}
}

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
		srv:  &http.Server{Handler: mux},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		_ = m.srv.Serve(ln)
	}()
	return m, nil
}

// close stops the server and waits for it.
func (m *metricsServer) close() {
	_ = m.srv.Close()
	<-m.done
	m.col.Close()
}
