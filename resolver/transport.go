package resolver

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size advertised with EDNS0.
const ednsSize = 4096

// exchanger sends one query to one server and returns its reply. It is the
// seam between the resolution logic and the network.
type exchanger interface {
	exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error)
}

// netExchanger queries over UDP and retries over TCP when the UDP reply is
// truncated.
type netExchanger struct {
	timeout time.Duration // per attempt
}

func (x netExchanger) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	r, err := x.once(ctx, "udp", m, server)
	if err != nil || !r.Truncated {
		return r, err
	}
	return x.once(ctx, "tcp", m, server)
}

// once runs one exchange over network. Unlike dns.Client.ExchangeContext it
// also stops when ctx is cancelled, not only at its deadline: cancellation
// closes the connection, whatever deadlines the exchange has set on it (it
// sets them after this function hands it over, so a deadline set from here
// could be overwritten).
func (x netExchanger) once(ctx context.Context, network string, m *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	c := &dns.Client{Net: network, UDPSize: ednsSize, Timeout: x.timeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, classifyNetErr(ctx, err)
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = conn.Close() // unblocks the write or read, or fails them
	})
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if !stop() {
		<-done
	}
	_ = conn.Close()
	if err != nil {
		return nil, classifyNetErr(ctx, err)
	}
	return r, nil
}

// classifyNetErr maps a transport error to the error of ctx when it was
// cancelled, else to ErrTimeout, ErrMalformed or ErrNetwork, keeping the
// cause.
func classifyNetErr(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return wrap(ctx.Err(), err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return wrap(ErrTimeout, err)
	case errors.Is(err, dns.ErrId):
		return wrap(ErrMismatch, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return wrap(ErrNetwork, err)
	}
	return wrap(ErrMalformed, err) // the reply could not be unpacked
}
