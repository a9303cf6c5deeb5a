package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnection of a connection the fleet dials.
const (
	reconnectWait = 250 * time.Millisecond
	pingInterval  = 2 * time.Second
	dialTimeout   = 2 * time.Second
	// openTimeout bounds opening the bucket at the start of a session, and
	// a watch's replay of it.
	openTimeout = 5 * time.Second
	// retryMax caps the wait between sessions that fail while connected.
	retryMax = 5 * time.Second
	// retryDenied is the wait after the server refused an operation: its
	// permissions change rarely.
	retryDenied = 30 * time.Second
)

// errDisconnected ends a session whose connection was lost.
var errDisconnected = errors.New("connection to NATS lost")

// Run shares the attached checkers' verdicts until ctx ends, then deletes
// this member's values (so the others take its places at once), makes
// every attached checker probe all its targets again and returns nil. It
// returns ErrRunning if the fleet is running.
//
// While it cannot share (not connected yet, connection lost, JetStream
// failing, an operation refused by the server's permissions) every
// attached checker probes all its targets, as without a fleet; it logs
// why, keeps trying, and shares again when it can. It returns early, with
// every checker probing locally, on what trying again cannot fix: a
// bucket of an incompatible format (ErrIncompatible), a newer instance
// with this member's id (ErrMemberConflict), a URL nats refuses. No
// goroutine it starts outlives it; a connection it dialled is closed.
func (f *Fleet) Run(ctx context.Context) (err error) {
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		return ErrRunning
	}
	f.running = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running = false
		f.mu.Unlock()
		if err != nil {
			f.why.Store("stopped: " + err.Error())
		} else {
			f.why.Store("not running")
		}
	}()
	f.epoch.Store(time.Now().UnixNano())
	f.leaving.Store(false)

	nc, own, err := f.connect()
	if err != nil {
		f.log.Error("fleet: cannot connect to NATS; probing every address locally", "url", f.cfg.URL, "error", err)
		return fmt.Errorf("fleet: connecting to %s: %w", f.cfg.URL, err)
	}
	if own {
		defer nc.Close()
	}
	status := nc.StatusChanged()
	defer nc.RemoveStatusListener(status)

	retry := reconnectWait
	logged := false
	for {
		if nc.IsConnected() {
			err := f.session(ctx, nc, status)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrIncompatible) || errors.Is(err, ErrMemberConflict):
				f.why.Store(err.Error())
				f.log.Error("fleet: stopped sharing for good; probing every address locally", "member", f.cfg.Member, "error", err)
				return err
			case errors.Is(err, ErrDenied):
				f.stats.denied.Add(1)
				retry = retryDenied
				f.why.Store(err.Error())
				f.log.Error("fleet: the NATS server refuses this member an operation the fleet needs; probing every address locally until it is allowed",
					"member", f.cfg.Member, "bucket", bucketName(f.cfg.Bucket), "why", err.Error(), "retry", retry.String(),
					"needs", "publish to $KV."+bucketName(f.cfg.Bucket)+".> and the JetStream API subjects in docs/fleet.md")
				logged = true
			case errors.Is(err, errDisconnected):
				retry = reconnectWait
			default:
				retry = min(retry*2, retryMax)
			}
			if !errors.Is(err, ErrDenied) {
				f.why.Store(err.Error())
				f.log.Warn("fleet: sharing stopped; probing every address locally until it resumes",
					"member", f.cfg.Member, "why", err.Error(), "retry", retry.String())
				logged = true
			}
		} else if !logged {
			f.why.Store("not connected to NATS (" + nc.Status().String() + ")")
			f.log.Warn("fleet: not connected to NATS; probing every address locally until connected",
				"member", f.cfg.Member, "url", f.cfg.URL, "status", nc.Status().String())
			logged = true
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-status:
			if retry == retryDenied {
				t.Stop()
				continue // reconnected maybe, but still refused: wait on
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// connect returns the connection to use: Config.Conn, or one dialled to
// Config.URL that retries and reconnects forever (own).
func (f *Fleet) connect() (nc *nats.Conn, own bool, err error) {
	if f.cfg.Conn != nil {
		return f.cfg.Conn, false, nil
	}
	opts := append([]nats.Option{
		nats.Name("vigil fleet " + f.cfg.Member),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(dialTimeout),
		// Nothing is buffered while disconnected, so no stale write
		// leaves after a reconnection.
		nats.ReconnectBufSize(-1),
		// The server drops what this member may not publish and says so
		// on the side: the fleet hears it at once.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				select {
				case f.denied <- err:
				default:
				}
			}
		}),
	}, f.natsOpts...)
	nc, err = nats.Connect(f.cfg.URL, opts...)
	return nc, true, err
}

// session shares verdicts over nc until ctx ends (nil), the connection is
// lost (errDisconnected) or something fails (the error). Every attached
// group shares on a goroutine of its own; groups attached meanwhile join.
func (f *Fleet) session(ctx context.Context, nc *nats.Conn, status <-chan nats.Status) error {
	select {
	case <-f.denied: // a refusal of an earlier session
	default:
	}
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	st, err := openStore(octx, nc, bucketName(f.cfg.Bucket))
	cancel()
	if err != nil {
		select {
		case d := <-f.denied:
			return fmt.Errorf("%w: %w (the server said: %w)", ErrDenied, err, d)
		default:
		}
		if !nc.IsConnected() {
			return fmt.Errorf("%w: %w", errDisconnected, err)
		}
		return err
	}
	epoch := f.epoch.Load()

	// The groups stop when the session does, not when ctx ends: the
	// session first tells them whether Run is ending (then they leave).
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	type running struct {
		g      *group
		cancel context.CancelFunc
		done   chan struct{}
	}
	var wg sync.WaitGroup
	failed := make(chan error, 1)
	groups := make(map[string]*running)
	reconcile := func() {
		want := f.attachedGroups()
		for name, r := range groups {
			if want[name] != r.g {
				r.cancel()
				<-r.done
				delete(groups, name)
			}
		}
		for name, g := range want {
			if groups[name] != nil {
				continue
			}
			gctx, gcancel := context.WithCancel(sctx)
			r := &running{g: g, cancel: gcancel, done: make(chan struct{})}
			groups[name] = r
			wg.Go(func() {
				defer close(r.done)
				if err := g.share(gctx, st, epoch); err != nil {
					select {
					case failed <- fmt.Errorf("%s: %w", g.name, err):
					default:
					}
				}
			})
		}
	}
	defer func() {
		if ctx.Err() != nil {
			f.leaving.Store(true) // Run is ending: the groups leave
		}
		stop()
		wg.Wait()
		f.sharing.Store(false)
	}()

	f.sharing.Store(true)
	f.why.Store("")
	f.stats.sessions.Add(1)
	f.log.Info("fleet: sharing verdicts", "member", f.cfg.Member, "zone", f.cfg.Zone, "bucket", st.bucket(),
		"probers", f.cfg.Probers, "quorum", f.cfg.Quorum, "upstreams", strings.Join(keys(f.attachedGroups()), ","))
	reconcile()
	tick := time.NewTicker(time.Second) // status events can be dropped: look too
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			f.leaving.Store(true)
			return nil
		case err := <-failed:
			f.stats.fallbacks.Add(1)
			select {
			case d := <-f.denied:
				return fmt.Errorf("%w: %w (the server said: %w)", ErrDenied, err, d)
			default:
			}
			if !nc.IsConnected() {
				return fmt.Errorf("%w: %w", errDisconnected, err)
			}
			return err
		case d := <-f.denied:
			f.stats.fallbacks.Add(1)
			return fmt.Errorf("%w: %w", ErrDenied, d)
		case <-f.attached:
			reconcile()
			continue
		case <-status:
		case <-tick.C:
		}
		if !nc.IsConnected() {
			f.stats.fallbacks.Add(1)
			return fmt.Errorf("%w (%s)", errDisconnected, nc.Status())
		}
	}
}

// keys returns m's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// check connects, opens the bucket and checks its format within d, for
// WithWait.
func (f *Fleet) check(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	nc := f.cfg.Conn
	if nc == nil {
		opts := append([]nats.Option{nats.Name("vigil fleet " + f.cfg.Member), nats.Timeout(d)}, f.natsOpts...)
		c, err := nats.Connect(f.cfg.URL, opts...)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, f.cfg.URL, err)
		}
		defer c.Close()
		nc = c
	}
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: not connected within %v (%s)", ErrUnavailable, d, nc.Status())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := openStore(ctx, nc, bucketName(f.cfg.Bucket)); err != nil {
		if errors.Is(err, ErrIncompatible) || errors.Is(err, ErrDenied) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
