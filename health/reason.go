package health

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/vigil-go/vigil/internal/connreason"
)

// classifyErr maps a probe's error to its outcome, a timeout (a deadline
// passed) or a TCP failure (refused, reset, closed, TLS failure, anything
// else), and a short reason: "connection refused", "timeout after 1s", ...
func classifyErr(ctx context.Context, err error, limit time.Duration) (outcome, string) {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		return timeout, "timeout after " + limit.String()
	}
	return tcpFailure, connreason.Of(err)
}

// statusReason is the reason of an HTTP response's outcome.
func statusReason(code int) string { return "HTTP " + strconv.Itoa(code) }
