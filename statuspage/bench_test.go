package statuspage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/statuspage"
)

// BenchmarkServe serves the page of 10 upstreams of 100 addresses each (a
// tenth of them ejected), as HTML and as JSON, and reports its size.
func BenchmarkServe(b *testing.B) {
	var ups []*vigil.Upstream
	for i := range 10 {
		name := fmt.Sprintf("u%d.bench.test", i)
		as := addrs(name, i, 100)
		u, err := vigil.New(vigil.Config{Name: name, Port: 80})
		if err != nil {
			b.Fatal(err)
		}
		u.Checker().SetTargets(as)
		for j := 0; j < len(as); j += 10 {
			eject(u, as[j])
		}
		ups = append(ups, u)
	}
	h, err := statuspage.New(statuspage.Of(ups...), statuspage.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		header http.Header
	}{{"html", nil}, {"json", acceptJSON}} {
		b.Run(c.name, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header = c.header
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
