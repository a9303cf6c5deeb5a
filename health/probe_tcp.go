package health

import (
	"context"
	"net"

	"github.com/vigil-go/vigil/resolver"
)

// probeTCP opens a TCP connection to addr and closes it.
func probeTCP(ctx context.Context, addr resolver.Address, sp spec) (outcome, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr.HostPort())
	if err != nil {
		return classifyErr(ctx, err, sp.timeout)
	}
	_ = conn.Close()
	return success, "connected"
}
