package vigilgrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/connreason"
	"github.com/vigil-go/vigil/resolver"
)

// ProberConfig configures a Prober. The zero value probes the server as a
// whole, in plaintext, and counts a server without the health service as
// healthy.
type ProberConfig struct {
	// Service is the name asked for in the HealthCheckRequest; "" asks
	// about the server as a whole.
	Service string
	// TLS, when not nil, secures the probe's connection with this
	// configuration (cloned). Its ServerName, when empty, is the target's
	// Hostname, or its IP when the Hostname is empty. Nil: plaintext,
	// unless Credentials is set.
	TLS *tls.Config
	// Credentials, when not nil, secure the probe's connection instead of
	// TLS: the transport credentials of the ClientConn, say. The server
	// name they verify is the target's Hostname unless they carry one.
	Credentials credentials.TransportCredentials
	// FailUnimplemented makes a server that answers UNIMPLEMENTED (it has
	// no health service) fail the probe, as an HTTP failure. By default
	// it passes: gRFC A17 has clients treat such a server as healthy.
	FailUnimplemented bool
	// DialOptions are added to those of every probe's connection
	// (interceptors, per-RPC credentials, a user agent). Options that
	// choose the dialer, the transport credentials or the authority are
	// the prober's own and must not be given.
	DialOptions []grpc.DialOption
}

// Prober is a health.Prober that calls Check of the standard gRPC health
// service (grpc.health.v1.Health) and judges its answer:
//
//   - SERVING is a success.
//   - NOT_SERVING, SERVICE_UNKNOWN (also a NOT_FOUND status, which is how
//     servers answer Check for a service they do not know) and any other
//     answer or status are HTTP failures: the server answered, and what
//     it said is the application's verdict, as an HTTP 503 from a health
//     endpoint is. They count towards Active.Unhealthy.HTTPFailures
//     (default 5): lower it to act on the first NOT_SERVING. The TCP
//     failure threshold stays for connections that fail.
//   - UNIMPLEMENTED is a success, or an HTTP failure with
//     FailUnimplemented.
//   - A connection that cannot be opened (refused, reset, no route, a
//     failed TLS handshake) is a TCP failure; the reason says what
//     happened: "connection refused", "TLS: certificate signed by an
//     unknown authority".
//   - The probe's deadline passing is a timeout.
//
// Each probe opens a connection of its own, calls Check once and closes it
// before Probe returns, with every goroutine the connection started: no
// connection idles between probes, none outlives its target, and a checker
// of 10,000 targets holds no goroutine for them between probes. This costs
// a TCP (and TLS) handshake and the HTTP/2 preface per probe; see
// docs/grpc.md for what it costs against a kept connection.
//
// Create it with NewProber and set it as health.Active.Prober; a Prober is
// safe for concurrent use.
type Prober struct {
	service           string
	creds             credentials.TransportCredentials
	failUnimplemented bool
	dialOpts          []grpc.DialOption
}

// NewProber returns a Prober configured by cfg.
func NewProber(cfg ProberConfig) *Prober {
	p := &Prober{
		service:           cfg.Service,
		failUnimplemented: cfg.FailUnimplemented,
		dialOpts:          append([]grpc.DialOption(nil), cfg.DialOptions...),
	}
	switch {
	case cfg.Credentials != nil:
		p.creds = cfg.Credentials.Clone()
	case cfg.TLS != nil:
		p.creds = credentials.NewTLS(cfg.TLS.Clone())
	default:
		p.creds = insecure.NewCredentials()
	}
	return p
}

// Probe implements health.Prober: one Check RPC to a, within ctx.
func (p *Prober) Probe(ctx context.Context, a resolver.Address) (health.ProbeOutcome, string) {
	limit := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		limit = time.Until(d).Round(time.Millisecond)
	}
	rec := new(recorder)
	opts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", a.HostPort())
			if err != nil {
				rec.set(err)
				return nil, err
			}
			return recordingConn{c, rec}, nil
		}),
		grpc.WithTransportCredentials(recordingCreds{p.creds, rec}),
	}
	// Credentials that carry a server name refuse a different authority.
	//lint:ignore SA1019 grpc-go compares the same field when it sets a ClientConn's authority
	if p.creds.Info().ServerName == "" {
		opts = append(opts, grpc.WithAuthority(authority(a)))
	}
	opts = append(opts, p.dialOpts...)
	cc, err := grpc.NewClient("passthrough:///vigil-probe", opts...)
	if err != nil {
		return health.ProbeTCPFailure, "gRPC client: " + err.Error()
	}
	defer func() { _ = cc.Close() }()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: p.service})
	if err == nil {
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return health.ProbeHTTPFailure, s.String()
		}
		return health.ProbeSuccess, "SERVING"
	}
	return p.judge(ctx, err, rec.get(), limit)
}

// judge maps a failed Check to its outcome and reason.
func (p *Prober) judge(ctx context.Context, err, connErr error, limit time.Duration) (health.ProbeOutcome, string) {
	code := status.Code(err)
	switch {
	case code == codes.DeadlineExceeded || ctx.Err() == context.DeadlineExceeded:
		if limit > 0 {
			return health.ProbeTimeout, "timeout after " + limit.String()
		}
		return health.ProbeTimeout, "timeout"
	case code == codes.Canceled || ctx.Err() != nil:
		return health.ProbeIgnored, "canceled" // the checker is stopping: dropped anyway
	case code == codes.Unavailable:
		if connErr != nil {
			return health.ProbeTCPFailure, connreason.Of(connErr)
		}
		return health.ProbeTCPFailure, status.Convert(err).Message()
	case code == codes.NotFound:
		return health.ProbeHTTPFailure, "SERVICE_UNKNOWN"
	case code == codes.Unimplemented && !p.failUnimplemented:
		return health.ProbeSuccess, "UNIMPLEMENTED (no health service)"
	}
	return health.ProbeHTTPFailure, codeName(code)
}

// authority is the :authority of a probe of a, whose host part becomes the
// TLS server name: the target's Hostname, else its IP.
func authority(a resolver.Address) string {
	if a.Hostname == "" {
		return a.HostPort()
	}
	return net.JoinHostPort(a.Hostname, strconv.Itoa(int(a.Port)))
}

// recorder keeps the first error of a probe's dial or handshake, which
// says what happened better than the status grpc-go makes of it.
type recorder struct {
	mu  sync.Mutex
	err error
}

func (r *recorder) set(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

func (r *recorder) get() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// recordingConn is a connection that records its first read or write
// error: a server that closes or resets the connection before answering.
type recordingConn struct {
	net.Conn
	rec *recorder
}

// Read implements net.Conn.
func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.rec.set(err)
	}
	return n, err
}

// Write implements net.Conn.
func (c recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.rec.set(err)
	}
	return n, err
}

// recordingCreds are transport credentials that record a failed handshake.
type recordingCreds struct {
	credentials.TransportCredentials
	rec *recorder
}

// ClientHandshake implements credentials.TransportCredentials.
func (c recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	c.rec.set(err)
	return conn, info, err
}

// Clone implements credentials.TransportCredentials.
func (c recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{c.TransportCredentials.Clone(), c.rec}
}
