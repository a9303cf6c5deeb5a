package tally

import (
	"sync"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// Observer receives every probe, query and request a Tally counts, after
// counting it, for the durations. A nil function is not called.
type Observer struct {
	Probe   func(Probe)
	Query   func(Query)
	Request func(Request)
}

// Option configures a Tally.
type Option func(*Tally)

// WithoutTargets counts requests per upstream only, not per picked target,
// and leaves the per-target state out of Read.
func WithoutTargets() Option {
	return func(t *Tally) { t.perTarget = false }
}

// Tally counts the events of the upstreams it follows on one bus.
type Tally struct {
	bus       *events.Bus
	obs       Observer
	perTarget bool

	// life serializes Watch, AddChecker, Unwatch and Close, so that an
	// Unwatch dropping an upstream's counts cannot interleave with a Watch
	// of the same upstream.
	life sync.Mutex

	mu     sync.Mutex // guards the fields below
	ups    map[string]*upstream
	closed bool
}

// upstream is the subscriptions and counts of one upstream.
type upstream struct {
	name   string
	unsubs []func()

	mu          sync.Mutex // guards the fields below
	checker     *health.Checker
	probes      map[string]uint64
	transitions map[string]uint64
	queries     map[QueryKey]uint64
	failures    map[string]uint64
	requests    map[string]uint64
	picks       map[resolver.Key]uint64 // nil WithoutTargets
	version     uint64                  // of the last Change counted
	addresses   int                     // in the last Change
}

// New returns a Tally of the upstreams that will be watched on bus, which
// hands what it counts to obs. It subscribes to nothing until Watch or
// AddChecker.
func New(bus *events.Bus, obs Observer, opts ...Option) *Tally {
	t := &Tally{bus: bus, obs: obs, perTarget: true, ups: make(map[string]*upstream)}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Watch subscribes to the bus topics of upstream name (normalized as
// resolver.NormalizeName does): probe results and status changes of its
// checker, queries, failures and address sets of its DNS source, and
// results of its balancer. It reports whether it started watching: false
// when name is watched already or the Tally is closed. Values published
// on an event topic before Watch are not counted; the address set a state
// topic retains is.
func (t *Tally) Watch(name string) bool {
	t.life.Lock()
	defer t.life.Unlock()
	return t.watch(resolver.NormalizeName(name), nil)
}

// AddChecker watches the checker's upstream, if it is not watched yet, and
// reads the checker at every Read. A second checker of the same upstream
// replaces the first. It reports whether it started watching.
func (t *Tally) AddChecker(ch *health.Checker) bool {
	t.life.Lock()
	defer t.life.Unlock()
	return t.watch(resolver.NormalizeName(ch.Config().Name), ch)
}

// watch is Watch, setting the upstream's checker when ch is not nil; t.life
// is held.
func (t *Tally) watch(name string, ch *health.Checker) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if u := t.ups[name]; u != nil {
		if ch != nil {
			u.mu.Lock()
			u.checker = ch
			u.mu.Unlock()
		}
		return false
	}
	u := &upstream{
		name:        name,
		checker:     ch,
		probes:      make(map[string]uint64, len(ProbeOutcomes)),
		transitions: make(map[string]uint64),
		queries:     make(map[QueryKey]uint64),
		failures:    make(map[string]uint64),
		requests:    make(map[string]uint64),
	}
	for _, o := range ProbeOutcomes {
		u.probes[o.String()] = 0
	}
	if t.perTarget {
		u.picks = make(map[resolver.Key]uint64)
	}
	t.ups[name] = u
	u.unsubs = []func(){
		events.Subscribe(t.bus, health.ProbeTopic(name), func(r health.ProbeResult) {
			p := probeOf(name, r)
			u.count(func() { u.probes[p.Outcome]++ })
			if t.obs.Probe != nil {
				t.obs.Probe(p)
			}
		}),
		events.Subscribe(t.bus, health.StatusTopic(name), func(s health.StatusChange) {
			if s.From != s.To { // not a verdict that changed under the other's Unhealthy
				u.count(func() { u.transitions[s.To.String()]++ })
			}
		}),
		events.Subscribe(t.bus, resolver.QueryTopic(name), func(rq resolver.Query) {
			q := queryOf(name, rq)
			u.count(func() { u.queries[QueryKey{q.Type, q.Result}]++ })
			if t.obs.Query != nil {
				t.obs.Query(q)
			}
		}),
		events.Subscribe(t.bus, resolver.FailureTopic(name), func(f resolver.Failure) {
			u.count(func() { u.failures[ErrorClass(f.Err)]++ })
		}),
		events.Subscribe(t.bus, resolver.Topic(name), func(c resolver.Change) {
			u.count(func() {
				if c.Version > u.version { // R4: an older set is stale
					u.version, u.addresses = c.Version, len(c.Addresses)
				}
			})
		}),
		events.Subscribe(t.bus, balancer.ResultTopic(name), func(r balancer.Result) {
			req := requestOf(name, r)
			u.count(func() {
				u.requests[req.Outcome]++
				if u.picks != nil {
					u.picks[r.Address.Key()]++
				}
			})
			if t.obs.Request != nil {
				t.obs.Request(req)
			}
		}),
	}
	return true
}

// count runs fn under u's lock.
func (u *upstream) count(fn func()) {
	u.mu.Lock()
	fn()
	u.mu.Unlock()
}

// Watching reports whether upstream name is watched.
func (t *Tally) Watching(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ups[resolver.NormalizeName(name)] != nil
}

// Unwatch stops following upstream name: it unsubscribes, waits for
// deliveries in progress, and forgets its counts and its checker.
func (t *Tally) Unwatch(name string) {
	name = resolver.NormalizeName(name)
	t.life.Lock()
	defer t.life.Unlock()
	t.mu.Lock()
	u := t.ups[name]
	delete(t.ups, name)
	t.mu.Unlock()
	if u != nil {
		u.stop()
	}
}

// Close unsubscribes from everything and waits for deliveries in progress;
// Watch and AddChecker then do nothing. The counts so far stay, and added
// checkers are still read. Close is idempotent.
func (t *Tally) Close() {
	t.life.Lock()
	defer t.life.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	ups := make([]*upstream, 0, len(t.ups))
	for _, u := range t.ups {
		ups = append(ups, u)
	}
	t.mu.Unlock()
	for _, u := range ups {
		u.stop()
	}
}

// stop unsubscribes; each unsubscription waits for its handler in
// progress, so once stop returns no handler counts or calls the Observer.
func (u *upstream) stop() {
	for _, unsub := range u.unsubs {
		unsub()
	}
}
