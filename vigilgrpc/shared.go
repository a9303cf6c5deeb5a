package vigilgrpc

import (
	"context"
	"log/slog"
	"sync"

	gresolver "google.golang.org/grpc/resolver"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// shared is one running upstream and the resolvers that use it.
type shared struct {
	key    shareKey
	up     *vigil.Upstream
	h      *handle
	refs   int // guarded by Builder.mu
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	unsub  func()

	mu      sync.Mutex
	failure error         // the last DNS failure of the whole name
	seq     uint64        // failures so far
	failed  chan struct{} // closed at the next one
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

// acquire returns the running upstream of k, starting it if there is none;
// an upstream of k that is stopping is waited for first, so that two
// upstreams of one name never run at once (they would share the name's
// topics on a shared bus).
func (b *Builder) acquire(k shareKey, opts gresolver.BuildOptions) (*shared, error) {
	for {
		b.mu.Lock()
		if s := b.ups[k]; s != nil {
			s.refs++
			b.mu.Unlock()
			return s, nil
		}
		if stopping := b.stopping[k]; stopping != nil {
			b.mu.Unlock()
			<-stopping
			continue
		}
		s, err := b.start(k, opts)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.ups[k] = s
		b.mu.Unlock()
		return s, nil
	}
}

// start makes k's upstream and runs it; b.mu is held.
func (b *Builder) start(k shareKey, opts gresolver.BuildOptions) (*shared, error) {
	up, err := vigil.New(b.config(k, opts), b.opts...)
	if err != nil {
		return nil, err
	}
	chk := up.Checker()
	s := &shared{
		key:    k,
		up:     up,
		refs:   1,
		done:   make(chan struct{}),
		failed: make(chan struct{}),
		h: &handle{
			name:  up.String(),
			chk:   chk,
			bal:   up.Balancer(),
			out:   newOutcomes(b.failures),
			keyed: up.Balancer().Policy() == balancer.ConsistentHash,
			watch: b.watch,
		},
	}
	s.unsub = events.Subscribe(up.Bus(), resolver.FailureTopic(up.Name()), s.onFailure)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if err := up.Run(ctx); err != nil {
			b.log.Warn("vigilgrpc: upstream stopped with an error", slog.String("upstream", s.h.name), slog.Any("error", err))
		}
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
	stopped := make(chan struct{})
	b.stopping[s.key] = stopped
	b.mu.Unlock()

	s.cancel()
	<-s.done
	s.unsub()

	b.mu.Lock()
	delete(b.stopping, s.key)
	b.mu.Unlock()
	close(stopped)
	b.log.Debug("vigilgrpc: upstream stopped", slog.String("upstream", s.h.name))
}

// onFailure records a DNS failure of the whole name (a partial one, of one
// family or SRV target, leaves the rest of the set to apply). It runs on
// the bus's delivery goroutine and never blocks.
func (s *shared) onFailure(f resolver.Failure) {
	if f.Partial {
		return
	}
	s.mu.Lock()
	s.failure = f.Err
	s.seq++
	close(s.failed)
	s.failed = make(chan struct{})
	s.mu.Unlock()
}

// lastFailure returns a channel closed at the next DNS failure, how many
// there were so far and the last one.
func (s *shared) lastFailure() (<-chan struct{}, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed, s.seq, s.failure
}
