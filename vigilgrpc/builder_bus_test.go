package vigilgrpc_test

import (
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// Two targets of one name at two ports, on one shared bus, are two
// upstreams that each hold only their own port's address: on one bus
// their topics would be the name's, and each would take the other's set.
func TestOneNameTwoPortsOnOneBus(t *testing.T) {
	d := dnsServer(t)
	one := startBackends(t, "127.0.72.1", 1, backendOpts{})
	two := startBackends(t, "127.0.72.1", 1, backendOpts{}) // the same IP, another port
	if err := d.SetA("api.internal", 1, one[0].IP.String()); err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	defer bus.Close()
	b := newBuilder(t, template(d), vigilgrpc.WithBus(bus))
	t1 := "vigil:///api.internal:" + itoa(one[0].Port)
	t2 := "vigil:///api.internal:" + itoa(two[0].Port)
	cc1, cc2 := dial(t, b, t1), dial(t, b, t2)
	waitServed(t, cc1, one)
	waitServed(t, cc2, two)
	for _, tc := range []struct {
		target string
		port   uint16
	}{{t1, one[0].Port}, {t2, two[0].Port}} {
		u := upstream(t, b, tc.target)
		testutil.Eventually(t, 3*time.Second, "the upstream's targets", func() bool { return len(u.Checker().Targets()) > 0 })
		for range 5 { // a few refreshes: the other's Changes would arrive meanwhile
			for _, tg := range u.Checker().Targets() {
				if tg.Address.Port != tc.port {
					t.Fatalf("the upstream of %s holds %v, the other port's target", tc.target, tg.Address)
				}
			}
			time.Sleep(100 * time.Millisecond) // TTL 1s, MinTTL of the template: let refreshes happen
		}
	}
}
