package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Defaults of Config.
const (
	DefaultBucket  = "vigil-fleet"
	DefaultProbers = 2
	DefaultTTL     = 5 * time.Second
)

// maxMember bounds a member id's length in bytes.
const maxMember = 128

// Config describes this client's membership of a fleet. Zero values mean
// the documented defaults.
type Config struct {
	// URL is the NATS server to connect to, or several separated by commas
	// ("nats://10.0.0.1:4222,nats://10.0.0.2:4222"). Required unless Conn
	// is set.
	URL string
	// Conn is a connection to use instead of dialling URL. The fleet never
	// closes it, and leaves its options (reconnection, handlers) alone: for
	// the fleet to fall back and come back, it should reconnect forever
	// (nats.MaxReconnects(-1)). Once its owner closes it, the checkers
	// probe locally until Run ends.
	Conn *nats.Conn
	// Bucket names the fleet's two JetStream key-value buckets,
	// Bucket+"-members" and Bucket+"-verdicts" (letters, digits, '-' and
	// '_'). Every member of one fleet uses the same Bucket; default
	// DefaultBucket. They are created when missing.
	Bucket string
	// Member is this client's id, unique in the fleet and stable across
	// its restarts (a pod or host name). Default: the host name, the
	// process id and a random suffix.
	Member string
	// Probers is how many live members probe each address (r). Default
	// DefaultProbers; 1 makes each address's verdict one member's.
	Probers int
	// TTL is how long this member's registration lasts without being
	// refreshed; it is refreshed every TTL/3. A member that stops without
	// leaving is forgotten after it. Default DefaultTTL.
	TTL time.Duration
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("fleet: invalid configuration")

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string { return "fleet: invalid config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// normalize checks c and fills in its defaults.
func normalize(c Config) (Config, error) {
	if c.Conn == nil && strings.TrimSpace(c.URL) == "" {
		return c, &ConfigError{Field: "URL", Reason: "required unless Conn is set"}
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if err := validBucket(c.Bucket); err != nil {
		return c, &ConfigError{Field: "Bucket", Reason: err.Error()}
	}
	if c.Member == "" {
		c.Member = defaultMember()
	}
	if err := validMember(c.Member); err != nil {
		return c, &ConfigError{Field: "Member", Reason: err.Error()}
	}
	switch {
	case c.Probers < 0:
		return c, &ConfigError{Field: "Probers", Reason: fmt.Sprintf("%d is negative", c.Probers)}
	case c.Probers == 0:
		c.Probers = DefaultProbers
	}
	switch {
	case c.TTL < 0:
		return c, &ConfigError{Field: "TTL", Reason: fmt.Sprintf("%v is negative", c.TTL)}
	case c.TTL == 0:
		c.TTL = DefaultTTL
	case c.TTL < 30*time.Millisecond:
		return c, &ConfigError{Field: "TTL", Reason: fmt.Sprintf("%v is shorter than 30ms", c.TTL)}
	}
	return c, nil
}

// validBucket checks a bucket base name: the names derived from it must be
// valid JetStream bucket names.
func validBucket(b string) error {
	if len(b) > 200 {
		return errors.New("longer than 200 bytes")
	}
	for _, r := range b {
		if !(r == '-' || r == '_' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return fmt.Errorf("%q: only ASCII letters, digits, '-' and '_'", b)
		}
	}
	return nil
}

// validMember checks a member id: printable UTF-8 of bounded length.
func validMember(m string) error {
	switch {
	case len(m) > maxMember:
		return fmt.Errorf("longer than %d bytes", maxMember)
	case !utf8.ValidString(m):
		return errors.New("not valid UTF-8")
	}
	for _, r := range m {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q holds a control or space character other than ' '", m)
		}
	}
	return nil
}

// defaultMember returns hostname-pid-random.
func defaultMember() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "vigil"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	m := host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	if len(m) > maxMember || validMember(m) != nil {
		m = "vigil-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}
	return m
}
