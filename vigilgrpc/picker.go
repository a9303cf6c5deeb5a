package vigilgrpc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/resolver"
)

// picker picks with the upstream's balancer for every RPC, among the
// targets that were healthy, with a ready SubConn, when it was made.
//
// The policy installs a new picker at every change of a SubConn's state and
// of the checker, and the balancer never hands out a target after the
// checker holds it unhealthy (a pick after a change waits for the
// balancer's rebuild), so a picker needs no view of health of its own: it
// asks the balancer to skip the targets that were not healthy and ready.
// (Skipping the unhealthy ones too keeps RPCs on healthy targets under the
// balancer's panic threshold.)
type picker struct {
	h     *handle
	conns map[resolver.Key]subConn
	skip  []resolver.Key // targets not both healthy and ready
	state connectivity.State
	err   error // of every pick, when no healthy target is ready
}

// newPicker returns the picker of conns at the checker's current state.
func newPicker(h *handle, conns map[resolver.Key]subConn) *picker {
	p := &picker{h: h, conns: conns}
	healthy := h.chk.Healthy()
	usable := make(map[resolver.Key]bool, len(healthy))
	for _, a := range healthy {
		if c, ok := conns[a.Key()]; ok && c.state == connectivity.Ready {
			usable[a.Key()] = true
		}
	}
	for k := range conns {
		if !usable[k] {
			p.skip = append(p.skip, k)
		}
	}
	p.state, p.err = p.summary(healthy)
	return p
}

// summary returns the ClientConn's state as the picker sees it and, when
// no healthy target is ready, the error of its picks: not a status error,
// so that wait-for-ready RPCs wait and the others fail with UNAVAILABLE.
func (p *picker) summary(healthy []resolver.Address) (connectivity.State, error) {
	waiting := false
	var connErr error
	for _, a := range healthy {
		c, ok := p.conns[a.Key()]
		switch {
		case ok && c.state == connectivity.Ready:
			return connectivity.Ready, nil
		case ok && c.state == connectivity.TransientFailure:
			connErr = c.err
		default:
			waiting = true // a new target, or one connecting: its SubConn is on its way
		}
	}
	switch {
	case len(healthy) == 0:
		return connectivity.TransientFailure, fmt.Errorf("vigilgrpc: %s: no healthy address (%d targets)", p.h.name, len(p.conns))
	case waiting:
		return connectivity.Connecting, gbalancer.ErrNoSubConnAvailable
	}
	if connErr == nil {
		connErr = errors.New("connection failed")
	}
	return connectivity.TransientFailure, fmt.Errorf("vigilgrpc: %s: no healthy address is reachable: %w", p.h.name, connErr)
}

// Pick implements balancer.Picker.
func (p *picker) Pick(info gbalancer.PickInfo) (gbalancer.PickResult, error) {
	if p.err != nil {
		return gbalancer.PickResult{}, p.err
	}
	skip := p.skip
	for range len(p.conns) + 1 { // each round skips one more target
		call, err := p.pick(info.Ctx, skip)
		if err != nil {
			// Every healthy target is skipped: the next picker (a SubConn
			// turning ready, a target changing) will have one.
			return gbalancer.PickResult{}, gbalancer.ErrNoSubConnAvailable
		}
		if c, ok := p.conns[call.Address.Key()]; ok && c.state == connectivity.Ready {
			out := p.h.out
			return gbalancer.PickResult{SubConn: c.sc, Done: func(di gbalancer.DoneInfo) { done(out, call, di) }}, nil
		}
		call.Cancel() // a new target whose SubConn is on its way
		skip = append(skip[:len(skip):len(skip)], call.Address.Key())
	}
	return gbalancer.PickResult{}, gbalancer.ErrNoSubConnAvailable
}

// pick asks the balancer, with the RPC's hash key under ConsistentHash
// (unless the key's target is to be skipped: then as any other pick).
func (p *picker) pick(ctx context.Context, skip []resolver.Key) (balancer.Call, error) {
	if p.h.keyed && ctx != nil {
		if k, ok := ctx.Value(hashKey{}).(string); ok {
			call, err := p.h.bal.PickKeyCall(k)
			if err != nil || !slices.Contains(skip, call.Address.Key()) {
				return call, err
			}
			call.Cancel()
		}
	}
	return p.h.bal.PickCallExcept(skip)
}

// hashKey is the context key of an RPC's hash key.
type hashKey struct{}

// ContextWithHashKey returns a context whose RPCs are picked by key when
// the upstream's policy is balancer.ConsistentHash: RPCs with one key go
// to one address as long as it stays healthy and connected. Under other
// policies the key is ignored.
func ContextWithHashKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, hashKey{}, key)
}
