package health_test

import (
	"fmt"
	"net/netip"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// A passive-only checker: reports from real traffic decide, and a departed
// address that returns gets its status back.
func ExampleChecker_ReportTCPFailure() {
	c, err := health.NewChecker(health.Config{
		Name: "api",
		Active: health.Active{ // negative intervals: no active probes
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := resolver.Address{IP: netip.MustParseAddr("127.0.0.1"), Port: 8080, Hostname: "api.internal"}
	c.SetTargets([]resolver.Address{a})
	fmt.Println(c.Status(a))
	c.ReportTCPFailure(a)
	c.ReportTCPFailure(a) // the passive TCP failure threshold is 2
	fmt.Println(c.Status(a))
	c.SetTargets(nil)
	fmt.Println(c.Status(a))
	c.SetTargets([]resolver.Address{a})
	fmt.Println(c.Status(a))
	// Output:
	// healthy
	// unhealthy
	// unknown
	// unhealthy
}

// Invalid configuration is an error that names the field.
func ExampleNewChecker_invalid() {
	_, err := health.NewChecker(health.Config{Name: "api", Active: health.Active{Path: "healthz"}}, nil)
	fmt.Println(err)
	// Output: health: invalid config: Active.Path: must start with "/"
}
