package vigil

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
)

// attempt is what one try of a request needs to know afterwards: whether
// its body failed to read, and whether it ever had a connection.
type attempt struct {
	body    *watchedBody
	traced  bool // trace is installed: gotConn is meaningful
	trace   httptrace.ClientTrace
	gotConn atomic.Bool
}

func (a *attempt) onGotConn(httptrace.GotConnInfo) { a.gotConn.Store(true) }

// bodyFailed reports whether reading the request body failed; a may be nil.
func (a *attempt) bodyFailed() bool {
	return a != nil && a.body != nil && a.body.failed.Load()
}

// retryable reports whether the try a, which failed with err and outcome o,
// may be sent again: another try is allowed (more), it never had a
// connection, so nothing of it was written (its pool's dialer failed, or,
// for HTTPS, whose handshake net/http does, the trace saw no connection),
// its connection failed or timed out, and the caller still waits.
func retryable(ctx context.Context, a *attempt, more bool, err error, o balancer.Outcome) bool {
	if !more || a.bodyFailed() || (o != balancer.ConnFailure && o != balancer.Timeout) || ctx.Err() != nil {
		return false
	}
	var de *dialError
	return errors.As(err, &de) || a != nil && a.traced && !a.gotConn.Load()
}

// dialError marks an error of a per-address pool's dialer: the try never
// had a connection, so nothing of it was written.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// replayable reports whether req's body can be sent again: none,
// http.NoBody, or GetBody set.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// prepare returns the request to send for one try of req, without modifying
// req: with a fresh body from GetBody when again is set, a body that tells
// whether reading it failed, and, when another try may follow, a trace that
// tells whether the try had a connection. A try that needs none of this
// sends req itself and returns a nil attempt. It fails when GetBody does.
func prepare(req *http.Request, again, traced bool) (*http.Request, *attempt, error) {
	body := req.Body
	if again && body != nil && body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, nil, err
		}
		body = b
	}
	watch := body != nil && body != http.NoBody
	if !watch && !traced && !again {
		return req, nil, nil
	}
	a := &attempt{traced: traced}
	r := req
	if traced {
		a.trace.GotConn = a.onGotConn
		r = req.WithContext(httptrace.WithClientTrace(req.Context(), &a.trace))
	} else {
		c := *req
		r = &c
	}
	r.Body = body
	if watch {
		a.body = &watchedBody{ReadCloser: body}
		r.Body = a.body
	}
	return r, a, nil
}

// watchedBody wraps a request body to tell whether reading it failed: such
// a failure is the caller's (its upload source broke, its client went away),
// not the backend's, and must not count against the backend's health.
type watchedBody struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// finish reports a response's outcome: a 429 or 503 with a readable
// Retry-After as such, any other by its status code.
func finish(call balancer.Call, resp *http.Response) {
	if code := resp.StatusCode; code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := health.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			call.DoneRetryAfter(code, d)
			return
		}
	}
	call.Done(balancer.HTTPStatus(resp.StatusCode))
}

// classify maps a round trip's error to an outcome.
func classify(ctx context.Context, err error) balancer.Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return balancer.Timeout
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return balancer.Ignore
	case errors.As(err, &ne) && ne.Timeout():
		return balancer.Timeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return balancer.ConnFailure
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return balancer.ConnFailure
	}
	return balancer.Ignore
}
