package vigilotel

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-go/vigil/internal/tally"
	"github.com/vigil-go/vigil/resolver"
)

// attrs renders s as "k=v k=v", sorted by key.
func attrs(s attribute.Set) string {
	var out []string
	for _, kv := range s.ToSlice() {
		out = append(out, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// A request with a duration is recorded on the convention's histogram of
// its protocol, with the convention's unit, buckets and attributes; one
// without records nothing.
func TestRequestDurations(t *testing.T) {
	target := resolver.Address{IP: netip.MustParseAddr("192.0.2.7"), Port: 8443, Hostname: "shop.example"}
	req := func(protocol, method, outcome string, code int, status string) tally.Request {
		return tally.Request{Upstream: "shop.example", Target: target, Outcome: outcome, StatusCode: code,
			Protocol: protocol, Method: method, Status: status, Duration: 30 * time.Millisecond}
	}
	const http, rpc = "http.client.request.duration", "rpc.client.call.duration"
	const where = "server.address=shop.example server.port=8443"
	for _, tc := range []struct {
		name   string
		r      tally.Request
		metric string
		want   string
	}{
		{"ok", req("http", "GET", "2xx", 200, ""), http,
			"http.request.method=GET http.response.status_code=200 " + where},
		{"server error", req("http", "POST", "5xx", 503, ""), http,
			"error.type=503 http.request.method=POST http.response.status_code=503 " + where},
		{"client error", req("http", "GET", "4xx", 404, ""), http,
			"error.type=404 http.request.method=GET http.response.status_code=404 " + where},
		{"unknown method, no response", req("http", "BREW", "conn_failure", 0, ""), http,
			"error.type=conn_failure http.request.method=_OTHER " + where},
		{"protocol and method unknown", req("", "", "timeout", 0, ""), http,
			"error.type=timeout " + where},
		{"given up", req("http", "GET", "ignore", 0, ""), http,
			"error.type=_OTHER http.request.method=GET " + where},
		{"rpc ok", req("grpc", "/shop.Cart/Add", "success", 0, "OK"), rpc,
			"rpc.method=shop.Cart/Add rpc.response.status_code=OK rpc.system.name=grpc " + where},
		{"rpc answered with an error", req("grpc", "/shop.Cart/Add", "success", 0, "NOT_FOUND"), rpc,
			"error.type=NOT_FOUND rpc.method=shop.Cart/Add rpc.response.status_code=NOT_FOUND rpc.system.name=grpc " + where},
		{"rpc unavailable", req("grpc", "/shop.Cart/Add", "conn_failure", 0, "UNAVAILABLE"), rpc,
			"error.type=UNAVAILABLE rpc.method=shop.Cart/Add rpc.response.status_code=UNAVAILABLE rpc.system.name=grpc " + where},
		{"rpc without status", req("grpc", "", "timeout", 0, ""), rpc,
			"error.type=timeout rpc.system.name=grpc " + where},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, r := newMetrics(t, newBus(t))
			m.request(tc.r)
			ms := r.collect(t)
			if len(ms) != 1 {
				t.Fatalf("%d instruments reported, want only %s", len(ms), tc.metric)
			}
			got, ok := ms[tc.metric]
			if !ok {
				t.Fatalf("not recorded on %s", tc.metric)
			}
			if got.Unit != "s" {
				t.Errorf("unit %q, want s", got.Unit)
			}
			dps := got.Data.(metricdata.Histogram[float64]).DataPoints
			if len(dps) != 1 || dps[0].Count != 1 || dps[0].Sum != 0.03 {
				t.Fatalf("data points %+v, want one of 0.03s", dps)
			}
			if !slices.Equal(dps[0].Bounds, conventionBuckets) {
				t.Errorf("bounds %v, want %v", dps[0].Bounds, conventionBuckets)
			}
			if a := attrs(dps[0].Attributes); a != tc.want {
				t.Errorf("attributes\n  %s\nwant\n  %s", a, tc.want)
			}
		})
	}
	t.Run("no duration", func(t *testing.T) {
		m, r := newMetrics(t, newBus(t))
		r2 := req("http", "GET", "2xx", 200, "")
		r2.Duration = 0
		m.request(r2)
		if ms := r.collect(t); len(ms) != 0 {
			t.Errorf("%d instruments reported for a request without a duration", len(ms))
		}
	})
}
