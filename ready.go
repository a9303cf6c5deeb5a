package vigil

import (
	"context"
	"fmt"
)

// WaitReady returns nil once a target of the upstream is healthy. If ctx
// ends first, it returns an error wrapping ctx's error and, if resolving
// the name failed since the last address set, that DNS failure (inspectable
// with errors.Is against the resolver's sentinel errors). It waits on the
// checker's changes, not by polling; the upstream must be running (Run) for
// anything to change.
func (u *Upstream) WaitReady(ctx context.Context) error {
	for {
		changed := u.chk.Changed()
		if len(u.chk.Healthy()) > 0 {
			return nil
		}
		failed, _ := u.lastFailure()
		select {
		case <-ctx.Done():
			return u.notReady(ctx.Err())
		case <-changed:
		case <-failed:
		}
	}
}

// notReady is the error of a wait cut short by cause.
func (u *Upstream) notReady(cause error) error {
	if _, f := u.lastFailure(); f != nil {
		return fmt.Errorf("vigil: upstream %s not ready: %w; last DNS failure: %w", u, cause, f)
	}
	return fmt.Errorf("vigil: upstream %s not ready: %w", u, cause)
}

// settled waits, within ctx, until a request for the upstream can be
// decided: a target is healthy, or the first address set was applied
// (unless new targets start unhealthy: then until one is healthy), or
// resolving failed before any address set arrived, which is then the
// error. Once settled, it returns at once: one atomic load.
func (u *Upstream) settled(ctx context.Context) error {
	if u.hasSettled.Load() {
		return nil
	}
	for {
		changed := u.chk.Changed()
		applied := u.chk.Stats().ChangesApplied > 0
		if len(u.chk.Healthy()) > 0 || applied && !u.waitAll {
			u.hasSettled.Store(true) // without a healthy target, the pick says so
			return nil
		}
		failed, failure := u.lastFailure()
		if failure != nil && !applied {
			return fmt.Errorf("vigil: upstream %s: %w", u, failure)
		}
		select {
		case <-ctx.Done():
			return u.notReady(ctx.Err())
		case <-changed:
		case <-failed:
		}
	}
}
