package subset_test

import (
	"fmt"
	"net/netip"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/subset"
)

// One client of a large fleet keeps 3 of 10 addresses; the same id keeps
// the same 3, and the Upstream probes and balances over them alone.
func Example() {
	s, err := subset.New("client-17", 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	var all []resolver.Address
	for i := range 10 {
		all = append(all, resolver.Address{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)}), Port: 8080, Hostname: "api.internal"})
	}
	again, _ := subset.New("client-17", 3)
	fmt.Println(len(s.Filter(all)), fmt.Sprint(s.Filter(all)) == fmt.Sprint(again.Filter(all)))

	u, err := vigil.New(vigil.Config{Name: "api.internal", Port: 8080}, vigil.WithHealthOptions(s.HealthOption()))
	fmt.Println(u.Name(), err)
	// Output:
	// 3 true
	// api.internal <nil>
}
