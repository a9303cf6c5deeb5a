package resolver

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewSourceRejectsInvalidConfig(t *testing.T) {
	valid := Config{Name: "web.test", Port: 80, Servers: []string{"127.0.0.1:53"}}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"empty name", func(c *Config) { c.Name = "" }, "Name"},
		{"blank name", func(c *Config) { c.Name = " " }, "Name"},
		{"root name", func(c *Config) { c.Name = "." }, "Name"},
		{"bad name", func(c *Config) { c.Name = "a..b" }, "Name"},
		{"name ending in a backslash", func(c *Config) { c.Name = `\0\` }, "Name"},
		{"unknown type", func(c *Config) { c.Type = 7 }, "Type"},
		{"port 0 for A", func(c *Config) { c.Port = 0 }, "Port"},
		{"port 0 for AAAA", func(c *Config) { c.Type, c.Port = AAAA, 0 }, "Port"},
		{"unparsable server", func(c *Config) { c.Servers = []string{"127.0.0.1:53", "dns.example:53"} }, "Servers[1]"},
		{"server port 0", func(c *Config) { c.Servers = []string{"127.0.0.1:0"} }, "Servers[0]"},
		{"server bad port", func(c *Config) { c.Servers = []string{"127.0.0.1:99999"} }, "Servers[0]"},
		{"MinTTL above MaxTTL", func(c *Config) { c.MinTTL, c.MaxTTL = time.Minute, time.Second }, "MinTTL"},
		{"MinTTL above default MaxTTL", func(c *Config) { c.MinTTL = time.Hour }, "MinTTL"},
		{"negative MinTTL", func(c *Config) { c.MinTTL = -1 }, "MinTTL"},
		{"negative MaxTTL", func(c *Config) { c.MaxTTL = -time.Second }, "MaxTTL"},
		{"negative Timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"negative NXDomainHold", func(c *Config) { c.NXDomainHold = -time.Second }, "NXDomainHold"},
		{"negative HoldObsolete", func(c *Config) { c.HoldObsolete = -time.Second }, "HoldObsolete"},
		{"port 0 for IP", func(c *Config) { c.Type, c.Port = IP, 0 }, "Port"},
		{"unknown family", func(c *Config) { c.Family = 3 }, "Family"},
		{"negative family", func(c *Config) { c.Family = -1 }, "Family"},
		{"invalid search domain", func(c *Config) { c.Search = []string{"a.test", "a..b"} }, "Search[1]"},
		{"root search domain", func(c *Config) { c.Search = []string{"."} }, "Search[0]"},
		{"ndots above 15", func(c *Config) { c.Ndots = 16 }, "Ndots"},
		{"IPv4Only for AAAA", func(c *Config) { c.Type, c.Family = AAAA, IPv4Only }, "Family"},
		{"negative Backoff.Initial", func(c *Config) { c.Backoff.Initial = -time.Second }, "Backoff.Initial"},
		{"negative Backoff.Max", func(c *Config) { c.Backoff.Max = -time.Second }, "Backoff.Max"},
		{"Backoff.Initial above Max", func(c *Config) { c.Backoff = Backoff{Initial: time.Minute, Max: time.Second} }, "Backoff.Initial"},
		{"Backoff.Initial above the default Max", func(c *Config) { c.Backoff.Initial = time.Hour }, "Backoff.Initial"},
		{"Backoff.Jitter 1", func(c *Config) { c.Backoff.Jitter = 1 }, "Backoff.Jitter"},
		{"Backoff.Jitter NaN", func(c *Config) { c.Backoff.Jitter = math.NaN() }, "Backoff.Jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			s, err := NewSource(cfg, nil)
			var ce *ConfigError
			if s != nil || !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("NewSource = %v, %v; want a ConfigError for %s", s, err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestNewSourceAcceptsAndDefaults(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "web.test.", Port: 80, Servers: []string{"127.0.0.1:5353", "[::1]:53", "10.0.0.1"}},
		{Name: "_http._tcp.web.test", Type: SRV, Servers: []string{"127.0.0.1:53"}},
		{Name: "web.test", Type: AAAA, Port: 443, Servers: []string{"::1"}, MinTTL: time.Millisecond, MaxTTL: time.Millisecond},
		{Name: "web.test", Type: IP, Port: 443, Servers: []string{"::1"}, Family: IPv6Only},
		{Name: "web.test", Type: A, Port: 443, Servers: []string{"::1"}, Family: IPv4Only, Backoff: Backoff{Jitter: -1, Max: time.Second}},
		{Name: "web.test", Type: A, Port: 443, Servers: []string{"::1"}, Family: IPv6Only, Search: []string{"a.test"}, Ndots: 15},
	} {
		s, err := NewSource(cfg, nil)
		if err != nil {
			t.Fatalf("NewSource(%+v) = %v", cfg, err)
		}
		if s.cfg.Timeout != DefaultTimeout || s.cfg.NXDomainHold != DefaultNXDomainHold ||
			s.cfg.Backoff.Initial != DefaultBackoffInitial || s.cfg.Backoff.Jitter == 0 {
			t.Errorf("defaults not applied: %+v", s.cfg)
		}
		if cfg.Type == A && s.cfg.Type != IP {
			t.Errorf("Type A resolves as %v, want IP (A and AAAA)", s.cfg.Type)
		}
	}
	s, _ := NewSource(Config{Name: "web.test", Port: 80, Servers: []string{"10.0.0.1", "[fe80::1%eth0]:5353"}}, nil)
	if want := []string{"10.0.0.1:53", "[fe80::1%eth0]:5353"}; !slices.Equal(s.plan().servers, want) {
		t.Errorf("servers = %v, want %v", s.plan().servers, want)
	}
}

func TestServersFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	must(t, os.WriteFile(conf, []byte("search example\nnameserver 127.0.0.1\nnameserver ::1\n"), 0o644))
	s, err := NewSource(Config{Name: "web.test", Port: 80}, nil, WithResolvConf(conf))
	must(t, err)
	if want := []string{"127.0.0.1:53", "[::1]:53"}; !slices.Equal(s.plan().servers, want) {
		t.Errorf("servers = %v, want %v", s.plan().servers, want)
	}

	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	s, err = NewSource(Config{Name: "web.test", Port: 80}, nil, WithResolvConf(filepath.Join(dir, "missing")), WithLogger(log))
	must(t, err)
	if want := []string{"127.0.0.1:53"}; !slices.Equal(s.plan().servers, want) {
		t.Errorf("servers = %v, want the fallback %v", s.plan().servers, want)
	}
	if !strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("no warning logged for the missing file: %q", logged.String())
	}
}

func TestRecordTypeString(t *testing.T) {
	for typ, want := range map[RecordType]string{A: "A", AAAA: "AAAA", SRV: "SRV", IP: "IP", 9: "RecordType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(typ), got, want)
		}
	}
	for f, want := range map[Family]string{DualStack: "DualStack", IPv4Only: "IPv4Only", IPv6Only: "IPv6Only", 7: "Family(7)"} {
		if got := f.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(f), got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{}.withDefaults()
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 64: 30 * time.Second} {
		for range 50 {
			d := b.delay(n)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("delay(%d) = %v, want %v ±20%%", n, d, want)
			}
		}
	}
	exact := Backoff{Initial: 10 * time.Millisecond, Max: 35 * time.Millisecond, Jitter: -1}.withDefaults()
	for n, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 35 * time.Millisecond, 64: 35 * time.Millisecond} {
		if d := exact.delay(n); d != want {
			t.Errorf("without jitter, delay(%d) = %v, want %v", n, d, want)
		}
	}
	huge := Backoff{Initial: time.Duration(math.MaxInt64 / 3), Max: time.Duration(math.MaxInt64), Jitter: 0.5}
	for n := range 5 {
		if d := huge.delay(n + 1); d <= 0 {
			t.Fatalf("delay(%d) = %v near the largest Duration, want positive", n+1, d)
		}
	}
	for range 50 {
		if d := refreshDelay(0, time.Second, time.Minute); d < 900*time.Millisecond || d > time.Second {
			t.Fatalf("refreshDelay(0) = %v, want 0.9s..1s", d)
		}
		if d := refreshDelay(time.Hour, time.Second, time.Minute); d < 54*time.Second || d > time.Minute {
			t.Fatalf("refreshDelay(1h) = %v, want 54s..60s", d)
		}
	}
}
