package fleet_test

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/fleet"
)

// One process of a fleet: its upstream shares verdicts with the fleet's
// other members through the NATS server; each backend is probed by three
// of them, from distinct zones where members of several hold it, and the
// fleet holds a backend unhealthy when two of its probers find it so.
// Without the server it probes everything itself, and says so.
func Example() {
	ctx := context.Background()
	u, err := vigil.New(vigil.Config{Name: "api.internal", Port: 8080})
	if err != nil {
		log.Fatal(err)
	}
	host, _ := os.Hostname()
	f, err := fleet.New(fleet.Config{URL: "nats://nats.internal:4222", Member: host, Zone: os.Getenv("ZONE")},
		fleet.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Attach(u); err != nil {
		log.Fatal(err)
	}
	go func() { _ = u.Run(ctx) }()
	go func() { _ = f.Run(ctx) }()
}
