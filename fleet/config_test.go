package fleet_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/fleet"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
)

// Invalid configuration is a *ConfigError naming the field, matching
// ErrInvalidConfig, and saying "fleet: invalid config: <Field>: ..."; the
// zero values are the documented defaults.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   fleet.Config
		field string
	}{
		{fleet.Config{}, "URL"},
		{fleet.Config{URL: "nats://x", Bucket: "a.b"}, "Bucket"},
		{fleet.Config{URL: "nats://x", Member: "a\nb"}, "Member"},
		{fleet.Config{URL: "nats://x", Member: strings.Repeat("m", 129)}, "Member"},
		{fleet.Config{URL: "nats://x", Zone: "eu\t1"}, "Zone"},
		{fleet.Config{URL: "nats://x", Zone: strings.Repeat("z", 65)}, "Zone"},
		{fleet.Config{URL: "nats://x", Probers: -1}, "Probers"},
		{fleet.Config{URL: "nats://x", Quorum: -1}, "Quorum"},
		{fleet.Config{URL: "nats://x", Quorum: 4}, "Quorum"},
		{fleet.Config{URL: "nats://x", Probers: 1, Quorum: 2}, "Quorum"},
		{fleet.Config{URL: "nats://x", TTL: -time.Second}, "TTL"},
	} {
		_, err := fleet.New(tc.cfg)
		var ce *fleet.ConfigError
		if !errors.Is(err, fleet.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v): %v, want a ConfigError on %s", tc.cfg, err, tc.field)
			continue
		}
		if want := "fleet: invalid config: " + tc.field + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q does not start with %q", err, want)
		}
	}
	var ce *fleet.ConfigError
	if _, err := fleet.New(fleet.Config{URL: "nats://x", Bucket: "a b"}); !errors.As(err, &ce) || ce.Err == nil || errors.Unwrap(err) != ce.Err {
		t.Errorf("a ConfigError with a cause does not unwrap to it: %#v", ce)
	}
	f, err := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.Config()
	if cfg.Bucket != fleet.DefaultBucket || cfg.Probers != 3 || cfg.Quorum != 2 || cfg.Member == "" || cfg.Zone != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, tc := range []struct{ probers, quorum int }{{1, 1}, {2, 2}, {4, 3}, {5, 3}} {
		f, err := fleet.New(fleet.Config{URL: "nats://x", Probers: tc.probers})
		if err != nil || f.Config().Quorum != tc.quorum {
			t.Errorf("Probers %d: quorum %d, %v; want a majority, %d", tc.probers, f.Config().Quorum, err, tc.quorum)
		}
	}
	if f, err := fleet.New(fleet.Config{URL: "nats://x", Quorum: fleet.QuorumAny}); err != nil || f.Config().Quorum != 1 {
		t.Errorf("QuorumAny: %v", err)
	}
}

func TestAttachErrors(t *testing.T) {
	f, _ := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"})
	bus := events.New()
	defer bus.Close()
	passive := healthConfig(time.Second)
	passive.Active.Unhealthy.Interval = -1
	chk, _ := health.NewChecker(passive, bus)
	if err := f.AttachChecker(chk, bus); !errors.Is(err, fleet.ErrNotProbed) {
		t.Errorf("a checker that does not probe unhealthy targets: %v, want ErrNotProbed", err)
	}
	chk, _ = health.NewChecker(healthConfig(time.Second), bus)
	if err := f.AttachChecker(chk, nil); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no bus: %v", err)
	}
	if err := f.AttachChecker(nil, bus); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no checker: %v", err)
	}
	if err := f.Attach(nil); !errors.Is(err, fleet.ErrInvalidConfig) {
		t.Errorf("no upstream: %v", err)
	}
	if err := f.AttachChecker(chk, bus); err != nil {
		t.Fatal(err)
	}
	other, _ := health.NewChecker(healthConfig(time.Second), bus)
	if err := f.AttachChecker(other, bus); !errors.Is(err, fleet.ErrAttached) {
		t.Errorf("a second checker of one name: %v, want ErrAttached", err)
	}
	if !f.Detach("API.fleet.test.") || f.Detach(upstream) {
		t.Error("Detach: want true once (the name normalized), then false")
	}
}

// Run refuses to run twice at once.
func TestRunTwice(t *testing.T) {
	log := &testutil.Buffer{}
	f, _ := fleet.New(fleet.Config{URL: "nats://127.0.0.1:1"},
		fleet.WithLogger(slog.New(slog.NewTextHandler(log, nil))), fleet.WithNATSOptions(nats.ReconnectWait(time.Hour)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "Run running", func() bool { return strings.Contains(log.String(), "not connected") })
	if err := f.Run(ctx); !errors.Is(err, fleet.ErrRunning) {
		t.Errorf("a second Run: %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
