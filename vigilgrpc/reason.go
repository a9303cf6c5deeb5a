package vigilgrpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"

	"google.golang.org/grpc/codes"
)

// connReason names what went wrong with a connection, without the
// addresses and operations that wrap the error: "connection refused",
// "TLS: certificate signed by an unknown authority", ...
func connReason(err error) string {
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

// codeNames are the canonical names of the status codes, as the gRPC
// specification writes them.
var codeNames = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// codeName returns the canonical name of c ("NOT_FOUND"), or "CODE(n)".
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "CODE(" + strconv.FormatUint(uint64(c), 10) + ")"
}
