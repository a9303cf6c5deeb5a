package main

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/metrics"
)

// serveMetrics serves the Prometheus metrics of c, fed from bus, on addr
// until stop is called, and returns their URL.
func serveMetrics(addr string, bus *events.Bus, c *health.Checker) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	col := metrics.New(bus)
	col.AddChecker(c)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	srv := &http.Server{Handler: metrics.Handler(reg), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/metrics", func() {
		_ = srv.Shutdown(context.Background()) // waits for the scrapes in progress
		<-done
		col.Close()
	}, nil
}
