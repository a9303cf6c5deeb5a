package balancer_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/resolver"
)

// An http.Client whose requests go to healthy addresses only. In production
// the checker follows a resolver.Source on a bus and runs active probes
// (checker.Run); here its targets are set by hand and only passive reports
// from the client's own traffic count.
func ExampleNewTransport() {
	backends, err := backendtest.StartGroup(netip.MustParseAddr("127.0.12.1"), 2, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backendtest.CloseAll(backends)

	checker, err := health.NewChecker(health.Config{
		Name: "shop.example", // the Transport takes requests for this host only
		Active: health.Active{
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var targets []resolver.Address
	for _, b := range backends {
		targets = append(targets, b.Address("shop.example"))
	}
	checker.SetTargets(targets)

	transport := balancer.NewTransport(balancer.New(checker), nil)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	// The URL names the service; the balancer picks the address.
	url := "http://shop.example:" + strconv.Itoa(int(backends[0].Port)) + "/"
	backends[1].SetStatus(http.StatusServiceUnavailable)
	// Five 503s make it unhealthy (the default passive threshold).
	for i := 0; i < 1000 && checker.Status(targets[1]) == health.Healthy; i++ {
		resp, err := client.Get(url)
		if err != nil {
			fmt.Println(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	fmt.Println("second backend:", checker.Status(targets[1]))

	before := backends[1].Requests()
	var codes []string
	for range 10 {
		resp, err := client.Get(url)
		if err != nil {
			fmt.Println(err)
			return
		}
		_ = resp.Body.Close()
		codes = append(codes, strconv.Itoa(resp.StatusCode))
	}
	fmt.Println(strings.Join(codes, " "))
	fmt.Println("requests to the second backend since:", backends[1].Requests()-before)
	// Output:
	// second backend: unhealthy
	// 200 200 200 200 200 200 200 200 200 200
	// requests to the second backend since: 0
}

func ExampleBalancer_Pick() {
	a := resolver.Address{IP: netip.MustParseAddr("192.0.2.1"), Port: 8080, Hostname: "api.example"}
	checker, err := health.NewChecker(health.Config{Name: "api"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	lb := balancer.New(checker)

	_, err = lb.Pick()
	fmt.Println(errors.Is(err, balancer.ErrNoHealthy), err)

	checker.SetTargets([]resolver.Address{a}) // new targets start healthy
	picked, err := lb.Pick()
	fmt.Println(picked, err)
	// Output:
	// true balancer: no healthy target for upstream "api"
	// api.example/192.0.2.1:8080 <nil>
}

// Consistent hashing keeps a key on its target while that target stays.
func ExampleBalancer_PickKey() {
	checker, err := health.NewChecker(health.Config{Name: "cache"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var targets []resolver.Address
	for i := range 4 {
		targets = append(targets, resolver.Address{
			IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}), Port: 11211, Hostname: "cache.example",
		})
	}
	checker.SetTargets(targets)
	lb := balancer.New(checker, balancer.WithPolicy(balancer.ConsistentHash))

	first, _ := lb.PickKey("user-42")
	again, _ := lb.PickKey("user-42")
	fmt.Println(first == again)
	// Output: true
}
