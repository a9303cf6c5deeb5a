package vigilgrpc

import (
	"context"
	"log/slog"

	gresolver "google.golang.org/grpc/resolver"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
)

// shared is one running upstream and the resolvers that use it.
type shared struct {
	key    shareKey
	up     *vigil.Upstream
	h      *handle
	refs   int // guarded by Builder.mu
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
}

// handle is what the vigil policy needs of an upstream; the resolver hands
// it over in the resolver state's attributes.
type handle struct {
	name  string
	chk   *health.Checker
	bal   *balancer.Balancer
	out   *outcomes
	keyed bool // ConsistentHash: picks take the RPC's hash key
	watch bool // the policy registers health listeners on ready SubConns
}

// acquire returns the running upstream of k, starting it if there is none.
// While the last upstream of k is stopping, it waits for that one's Run to
// return first: the next one starts from what the last one left in the
// Builder's memory (R9), which two running at once would overwrite. The
// wait is as long as a checker takes to stop (its probes in flight are
// cancelled); it holds no lock, so other targets are served meanwhile.
func (b *Builder) acquire(k shareKey, opts gresolver.BuildOptions) (*shared, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if s := b.ups[k]; s != nil {
			s.refs++
			return s, nil
		}
		old := b.stopping[k]
		if old == nil {
			break
		}
		b.mu.Unlock()
		<-old.done // it leaves b.stopping before done closes
		b.mu.Lock()
	}
	s, err := b.start(k, opts)
	if err != nil {
		return nil, err
	}
	b.ups[k] = s
	return s, nil
}

// start makes k's upstream, on the bus the Builder's Set gives its name,
// and runs it; b.mu is held.
func (b *Builder) start(k shareKey, opts gresolver.BuildOptions) (*shared, error) {
	bus, freeBus := b.buses.Acquire(k.name)
	up, err := vigil.New(b.config(k, opts), append(b.opts, vigil.WithBus(bus))...)
	if err != nil {
		freeBus()
		return nil, err
	}
	s := &shared{
		key:  k,
		up:   up,
		refs: 1,
		done: make(chan struct{}),
		h: &handle{
			name:  up.String(),
			chk:   up.Checker(),
			bal:   up.Balancer(),
			out:   newOutcomes(b.failures),
			keyed: up.Balancer().Policy() == balancer.ConsistentHash,
			watch: b.watch,
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if err := up.Run(ctx); err != nil {
			b.log.Warn("vigilgrpc: upstream stopped with an error", slog.String("upstream", s.h.name), slog.Any("error", err))
		}
		freeBus() // once Run returned: another upstream of the name may have the bus
		b.mu.Lock()
		if b.stopping[k] == s {
			delete(b.stopping, k)
		}
		b.mu.Unlock()
	}()
	b.log.Debug("vigilgrpc: upstream started", slog.String("upstream", s.h.name), slog.String("dns_server", k.server))
	return s, nil
}

// release drops a resolver's use of s; the last one stops the upstream and
// waits for it.
func (b *Builder) release(s *shared) {
	b.mu.Lock()
	s.refs--
	if s.refs > 0 {
		b.mu.Unlock()
		return
	}
	delete(b.ups, s.key)
	b.stopping[s.key] = s // until its Run returns: see acquire
	b.mu.Unlock()
	s.cancel()
	<-s.done
	b.log.Debug("vigilgrpc: upstream stopped", slog.String("upstream", s.h.name))
}
