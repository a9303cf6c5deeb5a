package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size advertised with EDNS0, and the largest
// UDP reply read: a longer datagram is a reply the server did not cut to
// the size asked for, and is asked again over TCP.
const ednsSize = 4096

// exchanger sends one query to one server and returns its reply. It is the
// seam between the resolution logic and the network. It is safe for
// concurrent use.
type exchanger interface {
	exchange(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error)
}

// errTruncated means a UDP reply had to be asked again over TCP: it is
// truncated and does not unpack (cut in the middle of a record), or it is
// longer than the ednsSize bytes read.
var errTruncated = errors.New("resolver: truncated UDP reply")

// netExchanger queries over UDP and asks again over TCP when the UDP reply
// is truncated. A server that answers a query with EDNS0 with FORMERR and no
// OPT record does not speak EDNS0 (RFC 6891, section 7): the query is sent
// again without it, and the server is asked without EDNS0 for noEDNSFor.
type netExchanger struct {
	log       *slog.Logger
	noEDNSFor time.Duration // how long a server that rejected EDNS0 is asked without it
	noEDNS    ednsMemory
}

// newNetExchanger returns an exchanger that logs to log.
func newNetExchanger(log *slog.Logger) *netExchanger {
	return &netExchanger{log: log, noEDNSFor: defaultNoEDNSFor}
}

// exchange asks server for m. Each UDP or TCP attempt gets timeout.
func (x *netExchanger) exchange(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	q := m
	edns := m.IsEdns0() != nil && !x.noEDNS.rejects(server, time.Now())
	if !edns {
		q = withoutEDNS(m)
	}
	r, err := x.overUDP(ctx, q, server, timeout)
	if edns && err == nil && rejectsEDNS(r) {
		plain := withoutEDNS(m)
		r, err = x.overUDP(ctx, plain, server, timeout)
		if err == nil && r.Rcode != dns.RcodeFormatError || errors.Is(err, errTruncated) {
			q = plain
			x.noEDNS.remember(server, time.Now().Add(x.noEDNSFor))
			x.log.Info("resolver: server rejects EDNS0 (FORMERR without OPT) but answers without it; asking it without EDNS0 for a while",
				slog.String("server", server), slog.String("for", x.noEDNSFor.String()))
		}
	}
	if errors.Is(err, errTruncated) || err == nil && r.Truncated {
		return x.overTCP(ctx, q, server, timeout)
	}
	return r, err
}

// rejectsEDNS reports whether r says that the server does not speak EDNS0:
// FORMERR without an OPT record. A FORMERR with one comes from a server that
// does, and refused something else.
func rejectsEDNS(r *dns.Msg) bool {
	return r.Rcode == dns.RcodeFormatError && r.IsEdns0() == nil
}

// withoutEDNS returns a copy of m without its OPT record.
func withoutEDNS(m *dns.Msg) *dns.Msg {
	c := m.Copy()
	c.Extra = slices.DeleteFunc(c.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return c
}

// overUDP sends m in one datagram and reads datagrams until one carries m's
// ID, as the miekg/dns client does: replies with another ID are late replies
// to earlier queries, or forged. It gives errTruncated for a reply that must
// be asked again over TCP. Cancelling ctx closes the socket at once.
func (x *netExchanger) overUDP(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, wrap(ErrMalformed, err) // not for a validated name
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, classifyNetErr(ctx, err, "udp", timeout)
	}
	defer closeOnCancel(ctx, conn)()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(wire); err != nil {
		return nil, classifyNetErr(ctx, err, "udp", timeout)
	}
	buf := make([]byte, ednsSize+1)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, classifyNetErr(ctx, err, "udp", timeout)
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) != m.Id {
			continue
		}
		if n > ednsSize {
			return nil, errTruncated
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			if n >= 12 && r.Truncated {
				return nil, errTruncated
			}
			return nil, wrap(ErrMalformed, err)
		}
		return r, nil
	}
}

// overTCP runs one exchange over TCP. Unlike dns.Client.ExchangeContext it
// also stops when ctx is cancelled, not only at its deadline: cancellation
// closes the connection, whatever deadlines the exchange has set on it (it
// sets them after this function hands it over, so a deadline set from here
// could be overwritten).
func (x *netExchanger) overTCP(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: "tcp", Timeout: timeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, classifyNetErr(ctx, err, "tcp", timeout)
	}
	release := closeOnCancel(ctx, conn)
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	release()
	if err != nil {
		return nil, classifyNetErr(ctx, err, "tcp", timeout)
	}
	return r, nil
}

// closeOnCancel closes conn when ctx ends (which unblocks a write or read,
// or fails it) and returns the function that closes it in any case and
// waits for the close started by ctx, if any: no goroutine outlives it.
func closeOnCancel(ctx context.Context, conn io.Closer) (release func()) {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = conn.Close()
	})
	return func() {
		if !stop() {
			<-done
		}
		_ = conn.Close()
	}
}

// classifyNetErr maps a transport error of an attempt over network with the
// given timeout to the error of ctx when it was cancelled, else to
// ErrTimeout, ErrMismatch, ErrNetwork or ErrMalformed, keeping the cause
// (but for a timeout, whose cause is the connection's own deadline or its
// close at the deadline).
func classifyNetErr(ctx context.Context, err error, network string, timeout time.Duration) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return wrap(ctx.Err(), err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return timeoutAfter(timeout, network)
	case errors.Is(err, dns.ErrId):
		return wrap(ErrMismatch, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return wrap(ErrNetwork, err)
	}
	return wrap(ErrMalformed, err) // the reply could not be unpacked
}
