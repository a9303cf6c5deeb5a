package vigilgrpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/resolver"
)

// connView is a SubConn as a picker sees it.
type connView struct {
	sc    gbalancer.SubConn
	addr  resolver.Address
	state connectivity.State
	err   error
}

// picker picks with the upstream's balancer for every RPC, among the
// targets whose SubConn is ready.
//
// Its SubConn states are fixed (the policy installs a new picker when one
// changes), but health is read at every pick: a view of the targets both
// healthy and ready, rebuilt as soon as the checker's generation moves.
// The balancer's choice is taken only if it is in the view of the current
// generation, so no RPC picked after the checker held a target unhealthy
// goes to it, even while the balancer still serves its previous snapshot.
type picker struct {
	h     *handle
	conns map[resolver.Key]connView
	view  atomic.Pointer[view]
	mu    sync.Mutex    // one view rebuild at a time
	next  atomic.Uint32 // rotation of the fallback picks
}

// view is what a picker can pick at one checker generation.
type view struct {
	gen    uint64
	usable map[resolver.Key]connView // healthy and ready
	list   []connView                // the same, in canonical order
	state  connectivity.State        // of the ClientConn, as this view has it
	// err is that of every pick when list is empty: not a status error,
	// so that wait-for-ready RPCs wait and the others fail with UNAVAILABLE.
	err error
}

func newPicker(h *handle, conns map[resolver.Key]connView) *picker {
	p := &picker{h: h, conns: conns}
	p.view.Store(p.build())
	return p
}

// current returns the view of the checker's current generation.
func (p *picker) current() *view {
	v := p.view.Load()
	if v.gen == p.h.chk.Generation() {
		return v
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v = p.view.Load(); v.gen == p.h.chk.Generation() {
		return v
	}
	v = p.build()
	p.view.Store(v)
	return v
}

// build makes the view of the checker's current state. The generation is
// read before the healthy set, so a change in between only makes the next
// pick build again.
func (p *picker) build() *view {
	v := &view{gen: p.h.chk.Generation(), usable: make(map[resolver.Key]connView)}
	healthy := p.h.chk.Healthy()
	waiting := false
	var connErr error
	for _, a := range healthy {
		c, ok := p.conns[a.Key()]
		switch {
		case !ok:
			waiting = true // a new target: its SubConn is on its way
		case c.state == connectivity.Ready:
			v.usable[a.Key()] = c
			v.list = append(v.list, c)
		case c.state == connectivity.TransientFailure:
			connErr = c.err
		default:
			waiting = true
		}
	}
	switch {
	case len(v.list) > 0:
		v.state = connectivity.Ready
	case len(healthy) == 0:
		v.state = connectivity.TransientFailure
		v.err = fmt.Errorf("vigilgrpc: %s: no healthy address (%d targets)", p.h.name, len(p.conns))
	case waiting:
		v.state = connectivity.Connecting
		v.err = gbalancer.ErrNoSubConnAvailable
	default:
		if connErr == nil {
			connErr = errors.New("connection failed")
		}
		v.state = connectivity.TransientFailure
		v.err = fmt.Errorf("vigilgrpc: %s: no healthy address is reachable: %w", p.h.name, connErr)
	}
	return v
}

// tries is how many of the balancer's picks a pick considers before it
// takes the next usable target in rotation instead: a healthy target whose
// connection is not ready (yet) is passed over.
const tries = 3

// Pick implements balancer.Picker.
func (p *picker) Pick(info gbalancer.PickInfo) (gbalancer.PickResult, error) {
	v := p.current()
	if len(v.list) == 0 {
		return gbalancer.PickResult{}, v.err
	}
	out := p.h.out
	for range tries {
		call, err := p.pick(info.Ctx)
		if err != nil {
			break
		}
		if c, ok := v.usable[call.Address.Key()]; ok {
			return gbalancer.PickResult{SubConn: c.sc, Done: func(di gbalancer.DoneInfo) { done(out, call, di) }}, nil
		}
		call.Done(balancer.Ignore)
	}
	c := v.list[int(p.next.Add(1)-1)%len(v.list)]
	d := direct{chk: p.h.chk, addr: c.addr}
	return gbalancer.PickResult{SubConn: c.sc, Done: func(di gbalancer.DoneInfo) { done(out, d, di) }}, nil
}

// pick asks the balancer, with the RPC's hash key under ConsistentHash.
func (p *picker) pick(ctx context.Context) (balancer.Call, error) {
	if p.h.keyed && ctx != nil {
		if k, ok := ctx.Value(hashKey{}).(string); ok {
			return p.h.bal.PickKeyCall(k)
		}
	}
	return p.h.bal.PickCall()
}

// hashKey is the context key of an RPC's hash key.
type hashKey struct{}

// ContextWithHashKey returns a context whose RPCs are picked by key when
// the upstream's policy is balancer.ConsistentHash: RPCs with one key go
// to one address as long as it stays healthy. Under other policies the
// key is ignored.
func ContextWithHashKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, hashKey{}, key)
}
