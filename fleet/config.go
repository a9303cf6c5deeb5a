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
	DefaultProbers = 3
	// DefaultTTL was the default registration TTL.
	//
	// Deprecated: members no longer register; Config.TTL is ignored.
	DefaultTTL = 5 * time.Second
)

// QuorumAny, as Config.Quorum, makes any one prober's failure enough for
// the fleet to hold an address unhealthy: the fastest, and right for a
// small fleet whose members all reach every backend the same way, but a
// member with a broken path to one backend then takes it out of every
// member's traffic.
const QuorumAny = 1

// Bounds of ids.
const (
	maxMember = 128
	maxZone   = 64
)

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
	// Bucket names the fleet's JetStream key-value bucket: the bucket is
	// Bucket+"-verdicts-v2" (the format's version; see FormatVersion).
	// Letters, digits, '-' and '_'. Every member of one fleet uses the
	// same Bucket; default DefaultBucket. It is created when missing.
	Bucket string
	// Member is this client's id, unique in the fleet and stable across
	// its restarts (a pod or host name). Default: the host name, the
	// process id and a random suffix.
	Member string
	// Zone is where this member runs (an availability zone, a rack, a
	// network segment): an address's probers are taken from distinct zones
	// where members of several hold it, so that one zone's network trouble
	// is outvoted. Default "": every member without a zone counts as one
	// zone.
	Zone string
	// Probers is how many members probe each address (r). Default
	// DefaultProbers. Members of one fleet use the same value.
	Probers int
	// Quorum is how many of an address's probers must find it unhealthy
	// for the fleet to hold it unhealthy. Default: a majority of Probers
	// (2 of 3), so that one prober alone (a member with a broken path to
	// the backend) cannot take it out of the others' traffic. QuorumAny
	// (1) makes any prober's failure enough. At most Probers.
	Quorum int
	// TTL was how long a member's registration lasted.
	//
	// Deprecated: members no longer register: a member counts as an
	// address's prober while its latest verdict on it is fresh, judged by
	// each reader's own probe intervals. TTL is ignored (a negative one is
	// still refused).
	TTL time.Duration
}

// normalize checks c and fills in its defaults.
func normalize(c Config) (Config, error) {
	if c.Conn == nil && strings.TrimSpace(c.URL) == "" {
		return c, &ConfigError{Field: "URL", Reason: "required unless Conn is set"}
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if err := validBucket(c.Bucket); err != nil {
		return c, &ConfigError{Field: "Bucket", Reason: err.Error(), Err: err}
	}
	if c.Member == "" {
		c.Member = defaultMember()
	}
	if err := validID(c.Member, maxMember); err != nil {
		return c, &ConfigError{Field: "Member", Reason: err.Error(), Err: err}
	}
	if err := validID(c.Zone, maxZone); err != nil {
		return c, &ConfigError{Field: "Zone", Reason: err.Error(), Err: err}
	}
	switch {
	case c.Probers < 0:
		return c, &ConfigError{Field: "Probers", Reason: fmt.Sprintf("%d is negative", c.Probers)}
	case c.Probers == 0:
		c.Probers = DefaultProbers
	}
	switch {
	case c.Quorum < 0:
		return c, &ConfigError{Field: "Quorum", Reason: fmt.Sprintf("%d is negative", c.Quorum)}
	case c.Quorum == 0:
		c.Quorum = c.Probers/2 + 1
	case c.Quorum > c.Probers:
		return c, &ConfigError{Field: "Quorum", Reason: fmt.Sprintf("%d is more than the %d probers of an address", c.Quorum, c.Probers)}
	}
	if c.TTL < 0 {
		return c, &ConfigError{Field: "TTL", Reason: fmt.Sprintf("%v is negative", c.TTL)}
	}
	return c, nil
}

// validBucket checks a bucket base name: the name derived from it must be
// a valid JetStream bucket name.
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

// validID checks a member id or zone: printable UTF-8 of bounded length.
func validID(m string, maxLen int) error {
	switch {
	case len(m) > maxLen:
		return fmt.Errorf("longer than %d bytes", maxLen)
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
	if len(m) > maxMember || validID(m, maxMember) != nil {
		m = "vigil-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}
	return m
}
