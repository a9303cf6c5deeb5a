package vigil

import (
	"context"
	"fmt"
	"time"
)

// WaitReady returns nil once a target of the upstream is healthy. If ctx
// ends first, it returns an error wrapping ctx's error and, if resolving
// the name failed since the last address set, that DNS failure (inspectable
// with errors.Is against the resolver's sentinel errors); if the
// upstream's Run ends first (or had ended), an error matching ErrStopped;
// if Run was never called and does not start within RunStartTimeout, an
// error matching ErrNotRunning. It waits on the checker's changes, not by
// polling.
func (u *Upstream) WaitReady(ctx context.Context) error {
	return u.wait(ctx, func(bool) bool { return len(u.chk.Healthy()) > 0 }, false)
}

// Settled reports whether a request for the upstream can be decided now: a
// target is healthy, or the first address set was applied (unless new
// targets start unhealthy: then only once one is healthy). Until then, a
// request through Transport waits. Integrations (a gRPC resolver, say)
// wait on Checker().Changed() and LastFailure() for it to change.
func (u *Upstream) Settled() bool {
	return u.hasSettled.Load() || u.settledNow(u.chk.Stats().ChangesApplied > 0)
}

// settledNow is Settled's test, told whether an address set was applied.
// Without a healthy target after the first set, the pick says so.
func (u *Upstream) settledNow(applied bool) bool {
	return len(u.chk.Healthy()) > 0 || applied && !u.waitAll
}

// LastFailure returns a channel closed at the next DNS failure of the whole
// name, and the last such failure since the last address set (nil if
// none). A partial failure (one family, one SRV target) does not count: the
// rest of the set applies.
func (u *Upstream) LastFailure() (next <-chan struct{}, err error) { return u.lastFailure() }

// settled waits, within ctx, until the upstream is Settled, or resolving
// failed before any address set arrived, which is then the error. Once
// settled, it returns at once: one atomic load.
func (u *Upstream) settled(ctx context.Context) error {
	if u.hasSettled.Load() {
		return nil
	}
	err := u.wait(ctx, u.settledNow, true)
	if err == nil {
		u.hasSettled.Store(true)
	}
	return err
}

// wait waits until done holds (it is told whether an address set was
// applied), ctx ends, the upstream stops or, with failFast, resolving fails
// before any address set was applied.
func (u *Upstream) wait(ctx context.Context, done func(applied bool) bool, failFast bool) error {
	for {
		changed := u.chk.Changed()
		applied := u.chk.Stats().ChangesApplied > 0
		if done(applied) {
			return nil
		}
		if err := u.awaitRun(ctx); err != nil {
			return err
		}
		failed, failure := u.lastFailure()
		if failFast && failure != nil && !applied {
			return fmt.Errorf("vigil: upstream %s: resolving its name failed: %w", u, failure)
		}
		ended, stopped := u.runEnd()
		if stopped {
			return u.notReady(ErrStopped)
		}
		select {
		case <-ctx.Done():
			return u.notReady(ctx.Err())
		case <-changed:
		case <-failed:
		case <-ended:
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

// awaitRun returns nil once the upstream's first Run has started, waiting
// for it within ctx and RunStartTimeout: a request made right after
// `go u.Run(ctx)` may come first.
func (u *Upstream) awaitRun(ctx context.Context) error {
	select {
	case <-u.started:
		return nil
	default:
	}
	timer := time.NewTimer(RunStartTimeout)
	defer timer.Stop()
	select {
	case <-u.started:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vigil: upstream %s not ready: %w (its Run was not called): %w", u, ctx.Err(), ErrNotRunning)
	case <-timer.C:
		return fmt.Errorf("vigil: upstream %s: its Run was not called (waited %v for it to start): %w", u, RunStartTimeout, ErrNotRunning)
	}
}
