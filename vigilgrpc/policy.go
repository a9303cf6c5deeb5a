package vigilgrpc

import (
	"context"
	"sync"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/health" // grpc-go's health watch of a connection (WithHealthWatch)
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// PolicyName is the name under which the vigil load balancing policy is
// registered with grpc-go. A Builder's resolvers select it through their
// service config; it works only with them.
const PolicyName = "vigil"

// grpc-go finds load balancing policies in a global registry only; this is
// the package's one piece of global state, registered once, under a name
// of its own.
func init() { gbalancer.Register(policyBuilder{}) }

// policyBuilder builds the vigil policy.
type policyBuilder struct{}

// Name implements balancer.Builder.
func (policyBuilder) Name() string { return PolicyName }

// Build implements balancer.Builder.
func (policyBuilder) Build(cc gbalancer.ClientConn, _ gbalancer.BuildOptions) gbalancer.Balancer {
	return &policy{cc: cc, conns: make(map[resolver.Key]*subConn)}
}

// subConn is the connection of one target.
type subConn struct {
	sc    gbalancer.SubConn
	addr  resolver.Address
	state connectivity.State
	err   error // the last connection error, in TransientFailure
}

// policy is the vigil load balancing policy of one ClientConn: a SubConn
// per target of the upstream, healthy or not, kept connected, and pickers
// that ask the upstream's balancer for every RPC. grpc-go calls its
// methods one at a time; a goroutine of its own watches the checker and
// installs a new picker at every change, so RPCs queued for lack of a
// healthy, connected target are picked again.
type policy struct {
	cc gbalancer.ClientConn

	mu     sync.Mutex // guards the fields below; held across cc.UpdateState, so pickers arrive in order
	h      *handle
	conns  map[resolver.Key]*subConn
	closed bool
	stop   context.CancelFunc // ends watch
	wg     sync.WaitGroup
}

// UpdateClientConnState implements balancer.Balancer: it makes a SubConn
// for every new target and shuts down those of targets that left.
func (p *policy) UpdateClientConnState(s gbalancer.ClientConnState) error {
	h := handleOf(s.ResolverState.Attributes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if h == nil { // a misconfiguration: a status error ends even wait-for-ready RPCs
		p.fail(status.Error(codes.Unavailable, "vigilgrpc: the "+PolicyName+" policy serves only targets of a vigilgrpc.Builder"))
		return gbalancer.ErrBadResolverState
	}
	if p.h != h {
		p.h = h
		p.watch()
	}
	seen := make(map[resolver.Key]bool, len(s.ResolverState.Endpoints))
	for _, ep := range s.ResolverState.Endpoints {
		a, ok := addressOf(ep)
		if !ok {
			continue
		}
		k := a.Key()
		seen[k] = true
		if c := p.conns[k]; c != nil {
			c.addr = a // weight or priority may have changed
			continue
		}
		c := &subConn{addr: a, state: connectivity.Idle}
		//lint:ignore SA1019 the deprecation warns of SubConns with several addresses; each has one here
		sc, err := p.cc.NewSubConn([]gresolver.Address{ep.Addresses[0]}, gbalancer.NewSubConnOptions{
			StateListener: func(st gbalancer.SubConnState) { p.updateSubConn(c, st) },
		})
		if err != nil {
			continue
		}
		c.sc = sc
		p.conns[k] = c
		sc.Connect()
	}
	for k, c := range p.conns {
		if !seen[k] {
			c.sc.Shutdown()
			delete(p.conns, k)
		}
	}
	p.update()
	if len(p.conns) == 0 {
		return gbalancer.ErrBadResolverState
	}
	return nil
}

// ResolverError implements balancer.Balancer. Without a target, RPCs fail
// with err; with targets, the upstream keeps its last address set and so
// does the policy.
func (p *policy) ResolverError(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && len(p.conns) == 0 {
		p.fail(err) // not a status error: wait-for-ready RPCs wait
	}
}

// UpdateSubConnState implements balancer.Balancer; SubConn states arrive
// through their StateListener instead.
func (p *policy) UpdateSubConnState(gbalancer.SubConn, gbalancer.SubConnState) {}

// updateSubConn applies a SubConn's new state: an idle one is connected
// again at once, so that a target that turns healthy has its connection.
func (p *policy) updateSubConn(c *subConn, st gbalancer.SubConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.conns[c.addr.Key()] != c || st.ConnectivityState == connectivity.Shutdown {
		return
	}
	c.state, c.err = st.ConnectivityState, st.ConnectionError
	switch c.state {
	case connectivity.Idle:
		c.sc.Connect()
	case connectivity.Ready:
		if p.h != nil && p.h.watch {
			h := p.h
			c.sc.RegisterHealthListener(func(hs gbalancer.SubConnState) { p.watched(h, c, hs) })
		}
	}
	p.update()
}

// watched applies an update of the health watch of c's connection to the
// target's active verdict: SERVING (or a server without the health
// service) is healthy, anything else unhealthy.
func (p *policy) watched(h *handle, c *subConn, hs gbalancer.SubConnState) {
	p.mu.Lock()
	live := !p.closed && p.h == h && p.conns[c.addr.Key()] == c
	addr := c.addr
	p.mu.Unlock()
	if !live {
		return
	}
	switch hs.ConnectivityState {
	case connectivity.Ready:
		h.chk.SetActive(addr, health.Healthy, "SERVING (health watch)")
	case connectivity.TransientFailure:
		why := "not SERVING"
		if hs.ConnectionError != nil {
			why = hs.ConnectionError.Error()
		}
		h.chk.SetActive(addr, health.Unhealthy, "health watch: "+why)
	}
}

// ExitIdle implements balancer.Balancer.
func (p *policy) ExitIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.state == connectivity.Idle {
			c.sc.Connect()
		}
	}
}

// Close implements balancer.Balancer: it stops the watch, waits for it and
// shuts down every SubConn.
func (p *policy) Close() {
	p.mu.Lock()
	p.closed = true
	stop, conns := p.stop, p.conns
	p.conns = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	p.wg.Wait()
	for _, c := range conns {
		c.sc.Shutdown()
	}
}

// watch starts following p.h's checker, after stopping the previous watch;
// p.mu is held.
func (p *policy) watch() {
	if p.stop != nil {
		p.stop() // the previous watch returns without installing a picker: p.h changed
	}
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	h := p.h
	changed := h.chk.Changed() // before the caller installs its picker: no change is missed
	p.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			changed = h.chk.Changed()
			p.mu.Lock()
			if !p.closed && p.h == h {
				p.update()
			}
			p.mu.Unlock()
		}
	})
}

// update installs a new picker over the current SubConns; p.mu is held.
func (p *policy) update() {
	conns := make(map[resolver.Key]subConn, len(p.conns))
	for k, c := range p.conns {
		conns[k] = *c
	}
	pk := newPicker(p.h, conns)
	p.cc.UpdateState(gbalancer.State{ConnectivityState: pk.state, Picker: pk})
}

// fail installs a picker that fails every RPC with err; p.mu is held.
func (p *policy) fail(err error) {
	p.cc.UpdateState(gbalancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{err}})
}

// errPicker fails every pick with its error.
type errPicker struct{ err error }

// Pick implements balancer.Picker.
func (e errPicker) Pick(gbalancer.PickInfo) (gbalancer.PickResult, error) {
	return gbalancer.PickResult{}, e.err
}
