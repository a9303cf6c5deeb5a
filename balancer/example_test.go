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
