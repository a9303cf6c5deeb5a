package fleet

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigil-go/vigil/health"
)

// FormatVersion is the version of the bucket's format this package writes
// and reads. The bucket's name ends with it (Bucket+"-verdicts-v2"), its
// metadata holds it (formatKey), and so does every value's "v" field.
//
// The rule: a change that a member of the previous version could misread
// (a field whose meaning changes, a field it needs that goes, keys that
// move) takes a new version, hence a new bucket: members of two versions
// never read each other's values. During a rolling upgrade each shares
// with its own kind, both correct, and the old bucket can be deleted once
// no old member remains. A field added that older members may ignore
// keeps the version. A value of a newer version found in this bucket
// (written by hand) is ignored and logged; a bucket whose metadata says
// another version is refused (ErrIncompatible).
//
// Version 1 had a members bucket (registrations) beside the verdicts
// bucket; version 2 has only verdicts and claims, one key per member and
// address.
const FormatVersion = 2

// recordStatus values.
const (
	statusHealthy   = "healthy"
	statusUnhealthy = "unhealthy"
	// statusClaim: the member has just taken up probing the address and
	// has no verdict of its own on it yet.
	statusClaim = "claim"
)

// record is one member's value on one address: its active verdict, or its
// claim to probe the address.
type record struct {
	V       int    `json:"v"`
	Member  string `json:"member"`
	Zone    string `json:"zone,omitempty"`
	Name    string `json:"name"`    // the upstream
	Address string `json:"address"` // "ip:port/hostname"
	Status  string `json:"status"`  // "healthy", "unhealthy" or "claim"
	Reason  string `json:"reason,omitempty"`
	// Epoch is when the writer's Run started (Unix ns): a later instance of
	// one member id has a higher one.
	Epoch int64 `json:"epoch"`
	// Window is how long the value counts after it is written: the
	// writer's probe interval and a margin (for a claim, also the delay
	// before its first probe). Readers bound it by their own settings.
	Window int64 `json:"window_ms"`
	// Delay is, for a claim, how long after it the writer probes first
	// (the phase it chose among the other probers').
	Delay int64 `json:"delay_ms,omitempty"`
}

// status returns the record's verdict: Healthy, Unhealthy, or Unknown for
// a claim.
func (r record) status() health.Status {
	switch r.Status {
	case statusHealthy:
		return health.Healthy
	case statusUnhealthy:
		return health.Unhealthy
	}
	return health.Unknown
}

func statusString(s health.Status) string {
	if s == health.Unhealthy {
		return statusUnhealthy
	}
	return statusHealthy
}

// errNewerValue marks a value written in a newer format.
var errNewerValue = errors.New("fleet: value of a newer format")

// decodeRecord decodes and checks a value.
func decodeRecord(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("fleet: bad value: %w", err)
	}
	if r.V > FormatVersion {
		return r, fmt.Errorf("%w: v%d", errNewerValue, r.V)
	}
	switch {
	case r.V != FormatVersion, r.Member == "", r.Window <= 0, r.Delay < 0,
		r.Status != statusHealthy && r.Status != statusUnhealthy && r.Status != statusClaim:
		return r, fmt.Errorf("fleet: bad value: version %d, member %q, status %q, window %dms, delay %dms",
			r.V, r.Member, r.Status, r.Window, r.Delay)
	}
	return r, nil
}
