package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
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
	return tcpFailure, errReason(err)
}

// errReason names what went wrong with a connection, without the addresses
// and operations that wrap it.
func errReason(err error) string {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rec tls.RecordHeaderError
		ae  tls.AlertError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "connection closed"
	case errors.As(err, &hn):
		return "TLS: certificate is not valid for " + strconv.Quote(hn.Host)
	case errors.As(err, &ua):
		return "TLS: certificate signed by an unknown authority"
	case errors.As(err, &ci):
		return "TLS: invalid certificate"
	case errors.As(err, &cv):
		return "TLS: certificate verification failed"
	case errors.As(err, &rec):
		return "TLS: not a TLS server"
	case errors.As(err, &ae):
		return "TLS: " + ae.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// statusReason is the reason of an HTTP response's outcome.
func statusReason(code int) string { return "HTTP " + strconv.Itoa(code) }
