package health_test

import (
	"context"
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

// Checkers of one name, one after the other, given one Memory: the second
// starts from what the first knew when its Run returned, as an upstream
// that stops when idle and starts again must.
func ExampleWithMemory() {
	mem := health.NewMemory(0) // shared by every checker given it
	cfg := health.Config{
		Name: "api",
		Active: health.Active{ // negative intervals: no active probes
			Healthy:   health.HealthyRules{Interval: -1},
			Unhealthy: health.UnhealthyRules{Interval: -1},
		},
	}
	a := resolver.Address{IP: netip.MustParseAddr("127.0.0.1"), Port: 8080, Hostname: "api.internal"}

	first, err := health.NewChecker(cfg, nil, health.WithMemory(mem))
	if err != nil {
		fmt.Println(err)
		return
	}
	first.SetTargets([]resolver.Address{a})
	first.ReportTCPFailure(a)
	first.ReportTCPFailure(a) // ejected
	ctx, stop := context.WithCancel(context.Background())
	stop()
	_ = first.Run(ctx) // returns at once, leaving its targets' state in mem
	fmt.Println(mem.Len())

	second, err := health.NewChecker(cfg, nil, health.WithMemory(mem))
	if err != nil {
		fmt.Println(err)
		return
	}
	second.SetTargets([]resolver.Address{a})
	fmt.Println(second.Status(a))
	// Output:
	// 1
	// unhealthy
}
