package vigilgrpc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/attributes"
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// handleKey is the attribute key of the handle in a resolver state.
type handleKey struct{}

// addrKey is the attribute key of an endpoint's vigil address.
type addrKey struct{}

// vigilResolver gives one ClientConn the addresses of a shared upstream.
type vigilResolver struct {
	b      *Builder
	s      *shared
	cc     gresolver.ClientConn
	sc     *serviceconfig.ParseResult
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// startResolver starts the goroutine that follows s for cc.
func startResolver(b *Builder, s *shared, cc gresolver.ClientConn, sc *serviceconfig.ParseResult) *vigilResolver {
	ctx, cancel := context.WithCancel(context.Background())
	r := &vigilResolver{b: b, s: s, cc: cc, sc: sc, cancel: cancel}
	r.wg.Go(func() { r.follow(ctx) })
	return r
}

// ResolveNow implements resolver.Resolver: grpc-go calls it when a
// connection fails or the policy rejects the addresses. It brings the
// upstream's next resolution forward, at most once per the template's
// Resolver.MinTTL (resolver.Source.ResolveNow), and never blocks.
func (r *vigilResolver) ResolveNow(gresolver.ResolveNowOptions) { r.s.up.Source().ResolveNow() }

// Close implements resolver.Resolver: it stops following the upstream and
// releases it; the last ClientConn's Close stops it. Close waits for both.
func (r *vigilResolver) Close() {
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.b.release(r.s)
	})
}

// Retries of a state the ClientConn rejected back off from
// updateRetryMin, doubling up to updateRetryMax.
const (
	updateRetryMin = 100 * time.Millisecond
	updateRetryMax = 5 * time.Second
)

// follow gives the ClientConn the upstream's targets once it is settled
// (vigil.Upstream.Settled), and again whenever the set changes
// (membership, weight or priority), until ctx ends. Before that, each DNS
// failure of the name is reported. A state the ClientConn rejects is
// logged and given again after a backoff, or at the next change, whichever
// comes first: it is never dropped.
func (r *vigilResolver) follow(ctx context.Context) {
	up, chk := r.s.up, r.s.h.chk
	var (
		last     []resolver.Address
		pushed   bool                 // the ClientConn took a state
		reported <-chan struct{}      // the failure channel that was current at the last report
		retry    <-chan time.Time     // a rejected state is due again
		backoff  = updateRetryMin / 2 // doubled before each wait
		timer    *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed := chk.Changed()
		failed, failure := up.LastFailure()
		switch {
		case pushed || up.Settled():
			addrs := targets(chk)
			if pushed && slices.Equal(addrs, last) {
				break
			}
			if err := r.cc.UpdateState(r.state(addrs)); err != nil {
				backoff = min(2*backoff, updateRetryMax)
				r.b.log.Warn("vigilgrpc: the channel rejected the addresses; giving them again later",
					slog.String("upstream", r.s.h.name), slog.Int("addresses", len(addrs)),
					slog.Any("error", err), slog.String("retry_in", backoff.String()))
				if timer == nil {
					timer = time.NewTimer(backoff)
				} else {
					timer.Reset(backoff)
				}
				retry = timer.C
				break
			}
			last, pushed, retry, backoff = addrs, true, nil, updateRetryMin/2
		case failure != nil && failed != reported:
			r.b.log.Info("vigilgrpc: resolving failed before any address set", slog.String("upstream", r.s.h.name), slog.Any("error", failure))
			r.cc.ReportError(fmt.Errorf("vigilgrpc: resolving %s: %w", r.s.h.name, failure))
			reported = failed
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-failed:
		case <-retry:
			pushed = false // give the same set again
		}
	}
}

// state is the resolver state of the target set addrs: an endpoint per
// address, carrying the vigil address, and the handle of the upstream for
// the vigil policy.
func (r *vigilResolver) state(addrs []resolver.Address) gresolver.State {
	eps := make([]gresolver.Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = gresolver.Endpoint{
			Addresses:  []gresolver.Address{{Addr: a.HostPort()}},
			Attributes: attributes.New(addrKey{}, a),
		}
	}
	return gresolver.State{
		Endpoints:     eps,
		ServiceConfig: r.sc,
		Attributes:    attributes.New(handleKey{}, r.s.h),
	}
}

// targets returns the addresses of the checker's targets, in canonical
// order.
func targets(chk *health.Checker) []resolver.Address {
	ts := chk.Targets()
	out := make([]resolver.Address, len(ts))
	for i, t := range ts {
		out[i] = t.Address
	}
	return out
}

// handleOf returns the handle in a resolver state's attributes.
func handleOf(a *attributes.Attributes) *handle {
	h, _ := a.Value(handleKey{}).(*handle)
	return h
}

// addressOf returns the vigil address of an endpoint.
func addressOf(ep gresolver.Endpoint) (resolver.Address, bool) {
	a, ok := ep.Attributes.Value(addrKey{}).(resolver.Address)
	return a, ok && len(ep.Addresses) > 0
}
