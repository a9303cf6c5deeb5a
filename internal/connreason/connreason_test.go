package connreason

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestOf(t *testing.T) {
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{op(syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("read: %w", op(syscall.ECONNRESET)), "connection reset"},
		{op(syscall.EHOSTUNREACH), "no route to host"},
		{io.ErrUnexpectedEOF, "connection closed"},
		{op(errors.New("something else")), "something else"},
		{errors.New("plain"), "plain"},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
