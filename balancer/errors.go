package balancer

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// ErrNoHealthy is matched (errors.Is) by the error of a pick that found no
// target to pick, a *NoHealthyError.
var ErrNoHealthy = errors.New("balancer: no healthy target")

// NoHealthyError is the error of a pick that found no target to pick. It
// says why: the upstream, how many targets its checker has and the latest
// reasons of the first few (Checker.Target's Reason), for example
//
//	balancer: no healthy target for upstream "auth.internal": 3 targets, all unhealthy:
//	HTTP 404 (127.0.0.1:8080), connection refused (127.0.0.2:8080), timeout (127.0.0.3:8080)
//
// (one line). The balancer builds it once per snapshot, when it finds no
// candidate, so a failing pick costs nothing more than a working one.
type NoHealthyError struct {
	Upstream string // the upstream's name
	// Targets is how many targets the checker had; 0 when it had none
	// (no address set yet, or an empty one).
	Targets int
	// First are the first targets in canonical order, at most
	// MaxReasons, with their Status and Reason.
	First []health.Target
	// Skipped, when not 0, says that the pick had candidates but was told
	// to skip every one (PickCallExcept): that many.
	Skipped int
}

// MaxReasons is how many targets' reasons a NoHealthyError holds.
const MaxReasons = 3

// maxReasonLen bounds one reason in the message.
const maxReasonLen = 160

// Error returns the message, one line of bounded length: at most
// MaxReasons reasons, then how many targets are left out.
func (e *NoHealthyError) Error() string {
	var b strings.Builder
	b.WriteString(`balancer: no healthy target for upstream "`)
	b.WriteString(e.Upstream)
	b.WriteString(`": `)
	switch {
	case e.Skipped > 0:
		b.WriteString("every candidate skipped (")
		b.WriteString(strconv.Itoa(e.Skipped))
		b.WriteString(" tried or unavailable)")
		return b.String()
	case e.Targets == 0:
		b.WriteString("no targets")
		return b.String()
	case e.Targets == 1:
		b.WriteString("1 target, unhealthy: ")
	default:
		b.WriteString(strconv.Itoa(e.Targets))
		b.WriteString(" targets, all unhealthy: ")
	}
	for i, t := range e.First {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(reasonOf(t))
		b.WriteString(" (")
		b.WriteString(e.addressOf(t.Address))
		b.WriteString(")")
	}
	if more := e.Targets - len(e.First); more > 0 {
		b.WriteString(" and ")
		b.WriteString(strconv.Itoa(more))
		b.WriteString(" more")
	}
	return b.String()
}

// Is reports whether target is ErrNoHealthy.
func (e *NoHealthyError) Is(target error) bool { return target == ErrNoHealthy }

// reasonOf returns t's reason, bounded, or what its status says without one.
func reasonOf(t health.Target) string {
	r := t.Reason
	switch {
	case r == "" && t.Status == health.Unhealthy:
		return "unhealthy, no check passed yet"
	case r == "":
		return t.Status.String()
	case len(r) > maxReasonLen:
		n := maxReasonLen
		for n > 0 && !utf8.RuneStart(r[n]) {
			n--
		}
		return r[:n] + "…"
	}
	return r
}

// addressOf returns a's IP and port, with its hostname when that is not the
// upstream's (an SRV target).
func (e *NoHealthyError) addressOf(a resolver.Address) string {
	if a.Hostname == "" || resolver.NormalizeName(a.Hostname) == e.Upstream {
		return a.HostPort()
	}
	return a.String()
}

// noHealthy returns the error of picks from a snapshot without candidates
// over the checker's targets ts.
func (b *Balancer) noHealthy(ts []health.Target) *NoHealthyError {
	return &NoHealthyError{Upstream: b.name, Targets: len(ts), First: slices.Clone(ts[:min(len(ts), MaxReasons)])}
}
