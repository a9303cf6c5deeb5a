package vigil_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// BenchmarkIdleUpstreams measures what 100 idle upstreams of 10 targets
// each cost a Client once every target has been probed: goroutines and
// live heap, per upstream. Run it with -benchtime=1x.
func BenchmarkIdleUpstreams(b *testing.B) {
	srv := dnsServer(b)
	bs := backends(b, "127.0.95.1", 10)
	var ups []vigil.Config
	for i := range 100 {
		name := fmt.Sprintf("idle-%d.internal", i)
		_ = srv.SetA(name, 3600, ips(bs)...)
		ups = append(ups, vigil.Config{Name: name, Port: bs[0].Port,
			Resolver: resolver.Config{Servers: []string{srv.Addr()}, MinTTL: time.Hour, MaxTTL: time.Hour},
			Health:   health.Config{Active: health.Active{Healthy: health.HealthyRules{Interval: time.Hour}}}})
	}
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		c, err := vigil.NewClient(vigil.ClientConfig{Upstreams: ups})
		if err != nil {
			b.Fatal(err)
		}
		testutil.Eventually(b, 30*time.Second, "every target probed once", func() bool {
			for _, u := range c.Upstreams() {
				if u.Checker().Stats().ProbesCompleted < 10 {
					return false
				}
			}
			return true
		})
		time.Sleep(100 * time.Millisecond) // the backends' connection goroutines end
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(runtime.NumGoroutine()-g0), "goroutines")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100, "heap-B/upstream")
		_ = c.Close()
	}
}

// BenchmarkClientOverhead compares requests to one loopback backend through
// a plain http.Transport, an Upstream's Transport and a Client: the
// difference is what vigil adds per request.
func BenchmarkClientOverhead(b *testing.B) {
	srv := dnsServer(b)
	bs := backends(b, "127.0.95.31", 1)
	_ = srv.SetA("bench.internal", 3600, ips(bs)...)
	cfg := vigil.Config{Name: "bench.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}},
		Health:   health.Config{Active: health.Active{Healthy: health.HealthyRules{Interval: time.Hour}}}}
	direct := fmt.Sprintf("http://%s/x", bs[0].HostPort())
	named := fmt.Sprintf("http://bench.internal:%d/x", bs[0].Port)
	loop := func(b *testing.B, c *http.Client, url string) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	b.Run("plain", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		loop(b, &http.Client{Transport: tr}, direct)
	})
	b.Run("upstream", func(b *testing.B) {
		u, err := vigil.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- u.Run(ctx) }()
		defer func() { cancel(); <-done }()
		loop(b, &http.Client{Transport: u.Transport(nil)}, named)
	})
	b.Run("client", func(b *testing.B) {
		c, err := vigil.NewClient(vigil.ClientConfig{Upstreams: []vigil.Config{cfg}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		loop(b, c.Client, named)
	})
}

// BenchmarkFirstResponse times a new Client's first response on a host it
// makes an upstream for from its template, against what that costs at
// least: one DNS query and one request on a new connection.
func BenchmarkFirstResponse(b *testing.B) {
	srv := dnsServer(b)
	bs := backends(b, "127.0.95.41", 1)
	_ = srv.SetA("first.internal", 3600, ips(bs)...)
	url := fmt.Sprintf("http://first.internal:%d/x", bs[0].Port)
	b.Run("dns+request", func(b *testing.B) {
		for b.Loop() {
			m := new(dns.Msg)
			m.SetQuestion("first.internal.", dns.TypeA)
			if _, _, err := new(dns.Client).Exchange(m, srv.Addr()); err != nil {
				b.Fatal(err)
			}
			tr := &http.Transport{}
			resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("http://%s/x", bs[0].HostPort()))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			tr.CloseIdleConnections()
		}
	})
	b.Run("client", func(b *testing.B) {
		tmpl := &vigil.Config{Resolver: resolver.Config{Servers: []string{srv.Addr()}}}
		for b.Loop() {
			c, err := vigil.NewClient(vigil.ClientConfig{Template: tmpl})
			if err != nil {
				b.Fatal(err)
			}
			resp, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			b.StopTimer()
			_ = c.Close()
			b.StartTimer()
		}
	})
}

// BenchmarkClientOverheadPaired times, in every iteration, one request
// through a plain http.Transport and one through a Client, to the same
// loopback backend, one after the other (in alternating order), so that
// the machine's load hits both alike: its ratio metric is the Client's
// time over the plain one's.
func BenchmarkClientOverheadPaired(b *testing.B) {
	srv := dnsServer(b)
	bs := backends(b, "127.0.95.61", 1)
	_ = srv.SetA("paired.internal", 3600, ips(bs)...)
	c, err := vigil.NewClient(vigil.ClientConfig{Upstreams: []vigil.Config{{Name: "paired.internal", Port: bs[0].Port,
		Resolver: resolver.Config{Servers: []string{srv.Addr()}},
		Health:   health.Config{Active: health.Active{Healthy: health.HealthyRules{Interval: time.Hour}}}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	plain := &http.Client{Transport: tr}
	direct := fmt.Sprintf("http://%s/x", bs[0].HostPort())
	named := fmt.Sprintf("http://paired.internal:%d/x", bs[0].Port)
	get := func(c *http.Client, url string) time.Duration {
		began := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return time.Since(began)
	}
	get(c.Client, named) // the first request waits for the first resolution
	var tPlain, tClient time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			tPlain += get(plain, direct)
			tClient += get(c.Client, named)
		} else {
			tClient += get(c.Client, named)
			tPlain += get(plain, direct)
		}
		i++
	}
	b.ReportMetric(float64(tClient)/float64(tPlain), "ratio")
	b.ReportMetric(float64(tPlain.Nanoseconds())/float64(i), "plain-ns/req")
	b.ReportMetric(float64(tClient.Nanoseconds())/float64(i), "client-ns/req")
}
