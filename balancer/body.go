package balancer

import (
	"io"
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
