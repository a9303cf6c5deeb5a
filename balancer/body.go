package balancer

import (
	"io"
	"net/http"
	"sync/atomic"
)

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

// watchBody returns req with its body wrapped, or req itself and nil when it
// has no body. The caller's req is not modified.
func watchBody(req *http.Request) (*http.Request, *watchedBody) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	wb := &watchedBody{ReadCloser: req.Body}
	r := *req
	r.Body = wb
	return &r, wb
}
