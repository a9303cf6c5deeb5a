package health

import (
	"context"
	"errors"
	"net"

	"github.com/vigil-go/vigil/resolver"
)

// probeTCP opens a TCP connection to addr and closes it.
func probeTCP(ctx context.Context, addr resolver.Address) outcome {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr.HostPort())
	if err != nil {
		return classifyErr(ctx, err)
	}
	_ = conn.Close()
	return success
}

// classifyErr maps a probe error to a timeout (a deadline passed) or a TCP
// failure (refused, reset, closed, TLS failure, anything else).
func classifyErr(ctx context.Context, err error) outcome {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return timeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return timeout
	}
	return tcpFailure
}
