package health

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// ProbeType selects what an active probe does.
type ProbeType int

const (
	// HTTP sends a GET request over plain HTTP (the zero value).
	HTTP ProbeType = iota
	// HTTPS sends a GET request over TLS, verifying the certificate unless
	// the checker's TLS configuration says otherwise (WithTLSConfig).
	HTTPS
	// TCP opens a TCP connection and closes it.
	TCP
)

// String returns "http", "https" or "tcp".
func (p ProbeType) String() string {
	switch p {
	case HTTP:
		return "http"
	case HTTPS:
		return "https"
	case TCP:
		return "tcp"
	}
	return "ProbeType(" + strconv.Itoa(int(p)) + ")"
}

// Defaults applied to zero values. The thresholds and status lists are those
// of lua-resty-healthcheck.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = time.Second
	DefaultPath     = "/"
	DefaultMemory   = 1024

	DefaultEjectionBase       = 30 * time.Second
	DefaultEjectionMax        = 300 * time.Second
	DefaultMaxEjectionPercent = 10
)

// Config configures a Checker. Zero values mean defaults; NewChecker and
// Update return a *ConfigError for invalid values.
type Config struct {
	Name    string // the upstream; the checker follows resolver.Topic(Name) on the bus
	Active  Active
	Passive Passive
	// Memory is how many departed addresses are remembered (LRU); 0 means
	// DefaultMemory, a negative value remembers none.
	Memory int
	// Initial is a brand-new target's status: Healthy (also for Unknown), or
	// Unhealthy until its first successful check (probe or report), however
	// many failures come before it. A target whose state is remembered takes
	// that state instead.
	Initial Status
}

// Active configures active probing.
type Active struct {
	Type ProbeType
	// Prober, when not nil, probes instead of Type's probe (Path, Host,
	// Headers and ExpectBody are then not used; Port and Timeout are).
	Prober Prober
	Path   string // request path, with an optional query; default "/"
	// Host overrides the Host header and TLS server name; default: the
	// target's Hostname, or, when that is empty, the probed IP:port as Host
	// header and no server name (the certificate is checked for the IP).
	Host    string
	Port    uint16        // probe port override; default: the target's port
	Timeout time.Duration // per probe, connecting included; default 1s
	// Headers are added to every HTTP(S) probe request (User-Agent
	// included, to override vigil's). Host is set with Host, not here.
	Headers http.Header
	// ExpectBody, when not empty, must occur in the first 64 KiB of the
	// response body of a probe whose status counts as a success, or the
	// probe is an HTTP failure (Envoy's expected body, HAProxy's
	// "http-check expect string").
	ExpectBody string
	Healthy    HealthyRules
	Unhealthy  UnhealthyRules
}

// Passive configures how reported outcomes of real traffic count: the
// passive verdict, with its own counters, judged apart from the active one.
// Intervals in passive rules are ignored.
type Passive struct {
	Healthy   HealthyRules
	Unhealthy UnhealthyRules
	Ejection  Ejection // how long a passive verdict of unhealthy lasts
	Outlier   Outlier  // upstream-wide outlier detection; the zero value turns it off
}

// Ejection says how long a passive verdict of unhealthy (an ejection)
// lasts: Base times the number of recent ejections, capped at Max, less up
// to 10% at random. The count of recent ejections drops by one for every
// Base that passes after the last ejection's deadline (or its end, if that
// came later): an ejection that passing probes cut short counts in full.
// When unhealthy targets are probed, probes end only the first of recent
// ejections early, once Active.Healthy.Successes probes started during it
// have passed in a row; a repeated ejection runs to its deadline. Defaults
// are Envoy's and gRFC A50's.
type Ejection struct {
	Base time.Duration // first ejection; default 30s
	Max  time.Duration // cap; default 300s, and never below Base
}

// Outlier configures upstream-wide outlier detection, after Envoy's outlier
// detection and gRFC A50: every Interval, targets whose passive success rate
// is far below the others' (SuccessRate) or whose failure share is above a
// limit (FailurePercentage) are ejected. The zero value (Interval 0) turns it
// off; a nil SuccessRate or FailurePercentage turns that algorithm off.
//
// A field whose 0 means its default takes Zero for an explicit 0, where
// Envoy and A50 give 0 a meaning of its own (its comment says which).
type Outlier struct {
	// Interval between evaluations; each counts the passive outcomes since
	// the previous one. 0 turns outlier detection off (Envoy and A50 use 10s).
	Interval time.Duration
	// MaxEjectionPercent caps the share of live targets that passive
	// verdicts (failure thresholds, Retry-After and outliers alike) eject at
	// once while outlier detection is on; one target may always be ejected.
	// Default 10 (Envoy, A50). Zero: detect only (A50's 0): outliers are
	// found and counted (Stats.OutliersDetected), and no passive verdict
	// ejects a target.
	MaxEjectionPercent int
	SuccessRate        *SuccessRate
	FailurePercentage  *FailurePercentage
}

// Zero is an explicit 0 for the Config fields whose 0 means a default
// although 0 itself is meaningful to Envoy and gRFC A50:
// Outlier.MaxEjectionPercent, the EnforcementPercentage of SuccessRate and
// FailurePercentage, SuccessRate.StdevFactor and FailurePercentage.Threshold.
// It is kept as it is in the normalized Config, so that Config and Update
// round-trip. Any other negative value in those fields is an error.
const Zero = -1

// SuccessRate ejects a target whose success rate is below mean − factor ×
// stdev of the success rates of the targets with enough requests.
type SuccessRate struct {
	// StdevFactor: default 1.9 (Envoy's 1900 / 1000). Zero: a target below
	// the mean is an outlier.
	StdevFactor float64
	// EnforcementPercentage is the chance, in percent, that an outlier found
	// is ejected; default 100. Zero: detect only (Stats.OutliersDetected).
	EnforcementPercentage int
	MinimumHosts          int // fewer targets with RequestVolume: no evaluation; default 5
	RequestVolume         int // requests in the interval for a target to count; default 100
}

// FailurePercentage ejects a target whose share of failed requests is above
// Threshold percent.
type FailurePercentage struct {
	Threshold             int // percent; default 85. Zero: any failure makes an outlier
	EnforcementPercentage int // default 100. Zero: detect only (Stats.OutliersDetected)
	MinimumHosts          int // default 5
	RequestVolume         int // default 50
}

// orZero is the value of a field that may hold Zero.
func orZero[T int | float64](v T) T { return max(v, 0) }

// HealthyRules say when a target turns (or counts towards) healthy.
type HealthyRules struct {
	// Interval between active probes while healthy; 0 means 1s, < 0
	// disables active probes while healthy.
	Interval time.Duration
	// Successes is how many consecutive successes turn an unhealthy target
	// healthy; default 2 (active) or 5 (passive).
	Successes int
	// HTTPStatuses count as successes; default {200, 302} (active) or
	// 200-208, 226, 300-308 (passive).
	HTTPStatuses []int
}

// UnhealthyRules say when a target turns (or counts towards) unhealthy.
type UnhealthyRules struct {
	// Interval between active probes while unhealthy; 0 means 1s, < 0
	// disables active probes while unhealthy.
	Interval time.Duration
	// Consecutive failures of each kind that turn a healthy target
	// unhealthy. Defaults: active 5, 2, 3; passive 5, 2, 7.
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
	// HTTPStatuses count as HTTP failures; default {429, 404, 500, 501, 502,
	// 503, 504, 505} (active) or {429, 500, 503} (passive).
	HTTPStatuses []int
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("health: invalid config")

// ConfigError reports an invalid Config field. It matches ErrInvalidConfig
// with errors.Is.
type ConfigError struct {
	Field  string // for example "Active.Path"
	Reason string // what is wrong with it
	Err    error  // the cause, when another package refused the value; may be nil
}

// Error implements error: "health: invalid config: Active.Path: must start
// with "/"".
func (e *ConfigError) Error() string { return "health: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the cause, if any.
func (e *ConfigError) Unwrap() error { return e.Err }

// invalid returns a *ConfigError for field.
func invalid(field, reason string) error { return &ConfigError{Field: field, Reason: reason} }

var (
	activeHealthyStatuses    = []int{200, 302}
	activeUnhealthyStatuses  = []int{429, 404, 500, 501, 502, 503, 504, 505}
	passiveHealthyStatuses   = []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308}
	passiveUnhealthyStatuses = []int{429, 500, 503}
)

// normalize validates cfg and returns it with defaults filled in. Slices are
// copied, so the caller may keep modifying its own.
func normalize(cfg Config) (Config, error) {
	if err := resolver.ValidateName(cfg.Name); err != nil {
		var ce *resolver.ConfigError
		errors.As(err, &ce)
		return cfg, &ConfigError{Field: "Name", Reason: ce.Reason, Err: err}
	}
	cfg.Name = resolver.NormalizeName(cfg.Name)
	a := &cfg.Active
	switch a.Type {
	case HTTP, HTTPS, TCP:
	default:
		return cfg, invalid("Active.Type", "unknown probe type "+a.Type.String())
	}
	if a.Path == "" {
		a.Path = DefaultPath
	}
	if !strings.HasPrefix(a.Path, "/") {
		return cfg, invalid("Active.Path", `must start with "/"`)
	}
	if _, err := url.ParseRequestURI(a.Path); err != nil || strings.ContainsAny(a.Path, " \t\r\n#") {
		return cfg, invalid("Active.Path", "not a valid request path")
	}
	if strings.ContainsAny(a.Host, " \t\r\n/") {
		return cfg, invalid("Active.Host", "not a valid host name")
	}
	if err := checkHeaders(a.Headers); err != nil {
		return cfg, err
	}
	a.Headers = a.Headers.Clone()
	switch {
	case a.Timeout < 0:
		return cfg, invalid("Active.Timeout", "must not be negative")
	case a.Timeout == 0:
		a.Timeout = DefaultTimeout
	}
	if a.Healthy.Interval == 0 {
		a.Healthy.Interval = DefaultInterval
	}
	if a.Unhealthy.Interval == 0 {
		a.Unhealthy.Interval = DefaultInterval
	}
	steps := []struct {
		field string
		n     *int
		def   int
	}{
		{"Active.Healthy.Successes", &a.Healthy.Successes, 2},
		{"Active.Unhealthy.HTTPFailures", &a.Unhealthy.HTTPFailures, 5},
		{"Active.Unhealthy.TCPFailures", &a.Unhealthy.TCPFailures, 2},
		{"Active.Unhealthy.Timeouts", &a.Unhealthy.Timeouts, 3},
		{"Passive.Healthy.Successes", &cfg.Passive.Healthy.Successes, 5},
		{"Passive.Unhealthy.HTTPFailures", &cfg.Passive.Unhealthy.HTTPFailures, 5},
		{"Passive.Unhealthy.TCPFailures", &cfg.Passive.Unhealthy.TCPFailures, 2},
		{"Passive.Unhealthy.Timeouts", &cfg.Passive.Unhealthy.Timeouts, 7},
	}
	for _, s := range steps {
		switch {
		case *s.n < 0:
			return cfg, invalid(s.field, "must not be negative")
		case *s.n == 0:
			*s.n = s.def
		}
	}
	lists := []struct {
		field string
		l     *[]int
		def   []int
	}{
		{"Active.Healthy.HTTPStatuses", &a.Healthy.HTTPStatuses, activeHealthyStatuses},
		{"Active.Unhealthy.HTTPStatuses", &a.Unhealthy.HTTPStatuses, activeUnhealthyStatuses},
		{"Passive.Healthy.HTTPStatuses", &cfg.Passive.Healthy.HTTPStatuses, passiveHealthyStatuses},
		{"Passive.Unhealthy.HTTPStatuses", &cfg.Passive.Unhealthy.HTTPStatuses, passiveUnhealthyStatuses},
	}
	for _, s := range lists {
		if len(*s.l) == 0 {
			*s.l = slices.Clone(s.def)
			continue
		}
		for _, code := range *s.l {
			if code < 100 || code > 599 {
				return cfg, invalid(s.field, strconv.Itoa(code)+" is not an HTTP status")
			}
		}
		*s.l = slices.Clone(*s.l)
	}
	for _, code := range a.Healthy.HTTPStatuses {
		if slices.Contains(a.Unhealthy.HTTPStatuses, code) {
			return cfg, invalid("Active.Unhealthy.HTTPStatuses", strconv.Itoa(code)+" is also a healthy status")
		}
	}
	for _, code := range cfg.Passive.Healthy.HTTPStatuses {
		if slices.Contains(cfg.Passive.Unhealthy.HTTPStatuses, code) {
			return cfg, invalid("Passive.Unhealthy.HTTPStatuses", strconv.Itoa(code)+" is also a healthy status")
		}
	}
	if cfg.Memory == 0 {
		cfg.Memory = DefaultMemory
	}
	if err := normalizePassive(&cfg.Passive); err != nil {
		return cfg, err
	}
	switch cfg.Initial {
	case Unknown:
		cfg.Initial = Healthy
	case Healthy, Unhealthy:
	default:
		return cfg, invalid("Initial", "unknown status "+cfg.Initial.String())
	}
	return cfg, nil
}

// probeSettingsEqual reports whether a and b probe the same way.
func probeSettingsEqual(a, b Active) bool {
	return a.Type == b.Type && sameProber(a.Prober, b.Prober) && a.Path == b.Path && a.Host == b.Host &&
		a.Port == b.Port && a.Timeout == b.Timeout && a.ExpectBody == b.ExpectBody &&
		fmt.Sprint(a.Headers) == fmt.Sprint(b.Headers) // fmt sorts map keys
}

// sameProber reports whether a and b are the same Prober; values of a type
// that cannot be compared are taken to differ.
func sameProber(a, b Prober) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// Clone returns c with its slices, maps and pointers copied, so that
// changing either changes nothing of the other. (An Active.Prober is
// shared: it is the caller's.)
func (c Config) Clone() Config {
	c.Active.Headers = c.Active.Headers.Clone()
	if sr := c.Passive.Outlier.SuccessRate; sr != nil {
		v := *sr
		c.Passive.Outlier.SuccessRate = &v
	}
	if fp := c.Passive.Outlier.FailurePercentage; fp != nil {
		v := *fp
		c.Passive.Outlier.FailurePercentage = &v
	}
	c.Active.Healthy.HTTPStatuses = slices.Clone(c.Active.Healthy.HTTPStatuses)
	c.Active.Unhealthy.HTTPStatuses = slices.Clone(c.Active.Unhealthy.HTTPStatuses)
	c.Passive.Healthy.HTTPStatuses = slices.Clone(c.Passive.Healthy.HTTPStatuses)
	c.Passive.Unhealthy.HTTPStatuses = slices.Clone(c.Passive.Unhealthy.HTTPStatuses)
	return c
}
