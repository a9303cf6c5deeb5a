package balancer_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

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
	// true balancer: no healthy target for upstream "api": no targets
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

// A Config is validated: a value out of range is an error naming the field.
func ExampleNewWithConfig() {
	checker, err := health.NewChecker(health.Config{Name: "api"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = balancer.NewWithConfig(checker, balancer.Config{Policy: balancer.LeastRequest, PanicThreshold: 1.5})
	fmt.Println(errors.Is(err, balancer.ErrInvalidConfig), err)

	lb, err := balancer.NewWithConfig(checker, balancer.Config{Policy: balancer.LeastRequest, PanicThreshold: 0.5})
	fmt.Println(lb.Policy(), err)
	// Output:
	// true balancer: invalid config: PanicThreshold: 1.5 is outside [0, 1]
	// least-request <nil>
}

// Loads shows each target's requests in flight and its picks so far.
func ExampleBalancer_Loads() {
	checker, err := health.NewChecker(health.Config{Name: "api"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	checker.SetTargets([]resolver.Address{
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 8080, Hostname: "api"},
		{IP: netip.MustParseAddr("192.0.2.2"), Port: 8080, Hostname: "api"},
	})
	lb := balancer.New(checker)
	var calls []balancer.Call
	for range 3 {
		call, err := lb.PickCall()
		if err != nil {
			fmt.Println(err)
			return
		}
		calls = append(calls, call)
	}
	calls[0].Done(balancer.HTTPStatus(200))
	inFlight, picks := int64(0), int64(0)
	for _, l := range lb.Loads() {
		inFlight += l.InFlight
		picks += l.Picks
	}
	fmt.Println("in flight:", inFlight, "picks:", picks)
	// Output: in flight: 2 picks: 3
}
