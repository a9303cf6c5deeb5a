// Package connreason names what went wrong with a connection, for the
// reasons the checkers give: "connection refused", "TLS: certificate signed
// by an unknown authority", ...
package connreason

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
)

// Of names what went wrong with a connection, without the addresses and
// operations that wrap the error.
func Of(err error) string {
	var (
		hn  x509.HostnameError
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		cv  *tls.CertificateVerificationError
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
