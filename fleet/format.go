package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-go/vigil/health"
)

// FormatVersion is the version of the buckets' format this package writes
// and reads. Every bucket carries it in its metadata (formatKey) and every
// value in its "v" field. A bucket of a higher version is refused
// (ErrIncompatible); a value of a higher version is ignored and logged.
// A change that older members could misread takes a new version, and a new
// Bucket name for the fleet while old and new members coexist.
const FormatVersion = 1

// formatKey is the bucket metadata key holding FormatVersion.
const formatKey = "vigil.fleet.format"

// Retention of the buckets: the members bucket drops a registration two TTLs
// after its last refresh (the creating member's TTL), the verdicts bucket a
// verdict verdictsMaxAge after its last write, so that members and
// addresses that are gone do not stay forever. Readers judge liveness and
// freshness by themselves; these only bound the buckets' size.
const verdictsMaxAge = 10 * time.Minute

// member is a registration in the members bucket, one per member and
// attached upstream.
type memberRecord struct {
	V      int    `json:"v"`
	Member string `json:"member"`
	Name   string `json:"name"`   // the upstream
	Epoch  int64  `json:"epoch"`  // when this instance's Run started (Unix ns): a later instance of one id has a higher one
	TTL    int64  `json:"ttl_ms"` // how long the registration lasts after this write
}

// verdictRecord is one member's active verdict on one address.
type verdictRecord struct {
	V       int    `json:"v"`
	Member  string `json:"member"`
	Name    string `json:"name"`    // the upstream
	Address string `json:"address"` // "ip:port/hostname"
	Status  string `json:"status"`  // "healthy" or "unhealthy"
	Reason  string `json:"reason,omitempty"`
	// Epoch and Seq are the version: a value replaces another only if its
	// (Epoch, Seq) is greater. Seq grows with every write of the instance.
	Epoch int64  `json:"epoch"`
	Seq   uint64 `json:"seq"`
	// Window is how long the verdict counts after it is written: the
	// writer's probe interval and a margin. A verdict not rewritten within
	// it is late: its writer stopped probing, and another member takes
	// over.
	Window int64 `json:"window_ms"`
}

// newer reports whether version (e1, s1) is greater than (e2, s2).
func newer(e1 int64, s1 uint64, e2 int64, s2 uint64) bool {
	return e1 > e2 || e1 == e2 && s1 > s2
}

func statusString(s health.Status) string {
	if s == health.Unhealthy {
		return "unhealthy"
	}
	return "healthy"
}

func parseStatus(s string) (health.Status, bool) {
	switch s {
	case "healthy":
		return health.Healthy, true
	case "unhealthy":
		return health.Unhealthy, true
	}
	return health.Unknown, false
}

// errNewerValue marks a value written in a newer format.
var errNewerValue = errors.New("fleet: value of a newer format")

// decodeMember decodes and checks a registration.
func decodeMember(b []byte) (memberRecord, error) {
	var r memberRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("fleet: bad registration: %w", err)
	}
	switch {
	case r.V > FormatVersion:
		return r, fmt.Errorf("%w: v%d", errNewerValue, r.V)
	case r.V < 1 || r.Member == "" || r.TTL <= 0:
		return r, fmt.Errorf("fleet: bad registration: version %d, member %q, ttl %dms", r.V, r.Member, r.TTL)
	}
	return r, nil
}

// decodeVerdict decodes and checks a verdict.
func decodeVerdict(b []byte) (verdictRecord, health.Status, error) {
	var r verdictRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, health.Unknown, fmt.Errorf("fleet: bad verdict: %w", err)
	}
	if r.V > FormatVersion {
		return r, health.Unknown, fmt.Errorf("%w: v%d", errNewerValue, r.V)
	}
	st, ok := parseStatus(r.Status)
	if r.V < 1 || !ok || r.Member == "" || r.Window <= 0 {
		return r, health.Unknown, fmt.Errorf("fleet: bad verdict: version %d, status %q, member %q, window %dms", r.V, r.Status, r.Member, r.Window)
	}
	return r, st, nil
}

// bucketConfig returns the configuration of a bucket this package creates.
func bucketConfig(name string, maxAge time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "vigil fleet: shared health verdicts",
		History:     1,
		TTL:         maxAge,
		Metadata:    map[string]string{formatKey: strconv.Itoa(FormatVersion)},
	}
}

// openBucket binds to the bucket name, creating it when missing, and
// checks its format.
func openBucket(ctx context.Context, js jetstream.JetStream, name string, maxAge time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, bucketConfig(name, maxAge))
		if errors.Is(err, jetstream.ErrBucketExists) { // made meanwhile by another member
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, checkFormat(name, st.Metadata())
}

// checkFormat refuses a bucket whose metadata says another format.
func checkFormat(name string, meta map[string]string) error {
	v, ok := meta[formatKey]
	if !ok {
		return fmt.Errorf("%w: bucket %s has no %s metadata: it is not a vigil fleet bucket", ErrIncompatible, name, formatKey)
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 1:
		return fmt.Errorf("%w: bucket %s: format %q is not a version", ErrIncompatible, name, v)
	case n > FormatVersion:
		return fmt.Errorf("%w: bucket %s is in format %d, written by a newer vigil; this one reads format %d (upgrade it, or use another Bucket)",
			ErrIncompatible, name, n, FormatVersion)
	}
	return nil
}
