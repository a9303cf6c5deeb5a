package vigil

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/namedbus"
	"github.com/vigil-go/vigil/internal/urlport"
	"github.com/vigil-go/vigil/resolver"
)

// DefaultIdleTimeout is how long an upstream made from a Client's template
// may go without a request before it is stopped, unless ClientConfig says
// otherwise.
const DefaultIdleTimeout = 5 * time.Minute

// ErrClosed is returned by requests of a Client after Close.
var ErrClosed = errors.New("vigil: client closed")

// ClientConfig configures a Client. Zero values mean the documented
// defaults.
type ClientConfig struct {
	// Upstreams are served from the start, each by its own Upstream: a
	// request whose URL names one (its host and, for A/AAAA, its port)
	// goes to that upstream's healthy addresses.
	Upstreams []Config
	// Template, when not nil, makes an upstream on first use for any other
	// host a request names (and Hosts accepts): Template with Name and
	// Port taken from the request's URL (the scheme's default port when
	// the URL has none). A host that is an IP address never gets one.
	Template *Config
	// Hosts says which host names Template serves; nil: every one.
	Hosts func(host string) bool
	// Base carries every request no upstream serves; nil:
	// http.DefaultTransport. Any RoundTripper will do.
	Base http.RoundTripper
	// IdleTimeout stops an upstream made from Template after that long
	// without a request; a later request makes it anew. 0 means
	// DefaultIdleTimeout; < 0 keeps them until Close.
	IdleTimeout time.Duration
}

// Client is an *http.Client that routes each request by its URL's host and
// port: to the healthy addresses of that host's upstream when it has one
// (configured up front, or made from the template on first use), otherwise
// to the base RoundTripper, never to an upstream's addresses. A request for
// an upstream whose name is not resolved yet waits for it within its
// context. Wrap Client.Transport to add tracing or retries. The Client runs
// its upstreams until Close.
type Client struct {
	*http.Client
	r *router
}

// NewClient checks cfg, starts the upstreams it configures and returns a
// Client. Every upstream shares one bus (WithBus, or one of the client's)
// and the options given, except that an upstream of a name another live
// upstream already has on it (another port) gets a bus of its own: on one
// bus the two would take each other's address sets. Invalid configuration gives a *ConfigError naming
// the field ("Upstreams[1].Port", "Template.Health.Active.Path").
func NewClient(cfg ClientConfig, opts ...Option) (*Client, error) {
	o := buildOptions(opts)
	ownBus := o.bus == nil
	if ownBus {
		o.bus = events.New(events.WithLogger(o.log))
	}
	r := &router{
		base:     cfg.Base,
		o:        o,
		ownBus:   ownBus,
		template: cfg.Template,
		hosts:    cfg.Hosts,
		idle:     cfg.IdleTimeout,
		buses:    namedbus.New(o.bus, o.log),
		routes:   make(map[routeKey]*route),
	}
	if r.base == nil {
		r.base = http.DefaultTransport
	}
	if r.idle == 0 {
		r.idle = DefaultIdleTimeout
	}
	if t := cfg.Template; t != nil {
		if err := checkTemplate(*t, o); err != nil {
			return nil, err
		}
		clone := t.Clone() // the caller may go on changing its own
		r.template = &clone
	}
	type made struct {
		u       *Upstream
		release func()
	}
	var ups []made
	fail := func(err error) (*Client, error) {
		for _, m := range ups {
			m.release()
		}
		return nil, err
	}
	for i, uc := range cfg.Upstreams {
		u, release, err := r.newUpstream(uc)
		if err != nil {
			return fail(within("Upstreams["+strconv.Itoa(i)+"]", err))
		}
		ups = append(ups, made{u, release})
		for _, prev := range ups[:len(ups)-1] {
			if keyOf(prev.u) == keyOf(u) {
				return fail(&ConfigError{Field: "Upstreams[" + strconv.Itoa(i) + "].Name",
					Reason: "upstream " + u.String() + " is configured twice"})
			}
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, m := range ups {
		r.start(m.u, m.release, false)
	}
	if cfg.Template != nil && r.idle > 0 {
		r.wg.Go(r.janitor)
	}
	return &Client{Client: &http.Client{Transport: r}, r: r}, nil
}

// Close stops every upstream and waits for them, then closes idle
// connections. Requests after Close fail with ErrClosed. Close is
// idempotent.
func (c *Client) Close() error {
	r := c.r
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	routes := r.routes
	r.routes = make(map[routeKey]*route)
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	for _, rt := range routes {
		rt.rt.CloseIdleConnections()
	}
	if r.ownBus {
		r.o.bus.Close()
	}
	return nil
}

// Upstream returns the upstream that serves a request for hostport ("host"
// or "host:port", the port of A/AAAA upstreams), if there is one now.
func (c *Client) Upstream(hostport string) (*Upstream, bool) {
	u, err := url.Parse("http://" + hostport)
	if err != nil {
		return nil, false
	}
	k, _ := routeKeyOf(u)
	rt := c.r.lookup(k)
	if rt == nil {
		return nil, false
	}
	return rt.up, true
}

// Upstreams returns the upstreams running now.
func (c *Client) Upstreams() []*Upstream {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	out := make([]*Upstream, 0, len(c.r.routes))
	for _, rt := range c.r.routes {
		out = append(out, rt.up)
	}
	return out
}

// CloseIdleConnections closes the idle connections of every upstream's
// pools and of the base RoundTripper, when it has such a method; the
// embedded http.Client's CloseIdleConnections calls it.
func (r *router) CloseIdleConnections() {
	r.mu.Lock()
	rts := make([]*route, 0, len(r.routes))
	for _, rt := range r.routes {
		rts = append(rts, rt)
	}
	r.mu.Unlock()
	for _, rt := range rts {
		rt.rt.CloseIdleConnections()
	}
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Bus returns the bus the client's upstreams publish on (all but those of
// a name another upstream on it already has: see NewClient).
func (c *Client) Bus() *events.Bus { return c.r.o.bus }

// router is the Client's RoundTripper.
type router struct {
	base     http.RoundTripper
	o        options
	ownBus   bool
	buses    *namedbus.Set // which bus each upstream gets
	template *Config
	hosts    func(string) bool
	idle     time.Duration

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // upstreams' Runs and the janitor

	mu     sync.Mutex
	routes map[routeKey]*route
	closed bool
}

// routeKey is what a request is routed by: the normalized host name and the
// port (0 for SRV upstreams, which serve any port).
type routeKey struct {
	host string
	port uint16
}

func keyOf(u *Upstream) routeKey { return routeKey{u.name, u.port} }

// routeKeyOf returns the key of a request for u, and whether its port is
// valid (explicit, else the scheme's default); port 0 when it is not.
func routeKeyOf(u *url.URL) (routeKey, bool) {
	k := routeKey{host: resolver.NormalizeName(u.Hostname())}
	p, ok := urlport.Of(u)
	if ok {
		k.port = p
	}
	return k, ok
}

// newUpstream makes an upstream of cfg on the bus the client's Set gives
// its name (see namedbus), with the release to call once it has stopped.
func (r *router) newUpstream(cfg Config) (*Upstream, func(), error) {
	o := r.o
	var release func()
	o.bus, release = r.buses.Acquire(resolver.NormalizeName(cfg.Name))
	u, err := newUpstream(cfg, o)
	if err != nil {
		release()
		return nil, nil, err
	}
	return u, release, nil
}

// route is one running upstream of the client.
type route struct {
	up       *Upstream
	rt       *transport
	template bool         // made from the template: stopped when idle
	used     atomic.Int64 // Unix nanoseconds of the last request's end
	inFlight atomic.Int64 // requests under way: an idle stop waits for none
	stop     context.CancelFunc
	done     chan struct{} // closed when the upstream's Run returned
}

// start runs u under the client, and release once its Run has returned;
// r.mu is held or the client is not shared yet.
func (r *router) start(u *Upstream, release func(), template bool) *route {
	ctx, stop := context.WithCancel(r.ctx)
	rt := &route{up: u, rt: u.transport(r.base), template: template, stop: stop, done: make(chan struct{})}
	rt.used.Store(time.Now().UnixNano())
	r.routes[keyOf(u)] = rt
	r.wg.Go(func() {
		defer close(rt.done)
		if err := u.Run(ctx); err != nil {
			r.o.log.Error("vigil: upstream stopped", "upstream", u.String(), "err", err)
		}
		release()
	})
	return rt
}

// lookup returns the route of a request with key k, if there is one.
func (r *router) lookup(k routeKey) *route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.find(k)
}

// find is lookup; r.mu is held.
func (r *router) find(k routeKey) *route {
	if rt := r.routes[k]; rt != nil {
		return rt
	}
	return r.routes[routeKey{host: k.host}] // an SRV upstream serves any port
}

// RoundTrip implements http.RoundTripper.
func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("vigil: request without a URL")
	}
	rt, err := r.route(req.URL) // counts the request in flight
	switch {
	case err != nil:
		closeBody(req)
		return nil, err
	case rt == nil:
		return r.base.RoundTrip(req)
	}
	resp, err := rt.rt.RoundTrip(req)
	rt.used.Store(time.Now().UnixNano())
	rt.inFlight.Add(-1)
	if err != nil && errors.Is(err, ErrStopped) && r.isClosed() {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return resp, err
}

func (r *router) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// closeBody closes req's body, if any: a RoundTripper that fails a request
// must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// route returns the route of a request for u, counted in flight, making
// one from the template when it may; nil when the request goes to the base.
func (r *router) route(u *url.URL) (*route, error) {
	k, portOK := routeKeyOf(u)
	if rt, err := r.existing(k); rt != nil || err != nil {
		return rt, err
	}
	if r.template == nil || k.host == "" {
		return nil, nil
	}
	if _, err := netip.ParseAddr(k.host); err == nil {
		return nil, nil // an IP address: nothing to resolve
	}
	if r.hosts != nil && !r.hosts(k.host) { // the caller's code: outside r.mu
		return nil, nil
	}
	if !portOK {
		return nil, fmt.Errorf("vigil: %s: no valid port in the URL and no default port for scheme %q", u.Host, u.Scheme)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if rt := r.find(k); rt != nil { // made meanwhile by another request
		rt.inFlight.Add(1)
		return rt, nil
	}
	cfg := *r.template
	cfg.Name, cfg.Port = k.host, k.port
	up, release, err := r.newUpstream(cfg)
	if err != nil {
		return nil, fmt.Errorf("vigil: no upstream for %s: %w", u.Host, err)
	}
	r.o.log.Info("vigil: upstream started for a new host", "upstream", up.String())
	rt := r.start(up, release, true)
	rt.inFlight.Add(1)
	return rt, nil
}

// existing returns the route of key k, counted in flight, if there is one.
func (r *router) existing(k routeKey) (*route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	rt := r.find(k)
	if rt != nil {
		rt.inFlight.Add(1)
	}
	return rt, nil
}

// janitor stops upstreams made from the template once they are idle, until
// the client closes.
func (r *router) janitor() {
	tick := time.NewTicker(max(r.idle/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			r.stopIdle(now)
		}
	}
}

// stopIdle stops the template upstreams no request used since now − idle.
func (r *router) stopIdle(now time.Time) {
	cutoff := now.Add(-r.idle).UnixNano()
	var idle []*route
	r.mu.Lock()
	for k, rt := range r.routes {
		if rt.template && rt.inFlight.Load() == 0 && rt.used.Load() < cutoff {
			delete(r.routes, k)
			idle = append(idle, rt)
		}
	}
	r.mu.Unlock()
	for _, rt := range idle {
		rt.stop()
		<-rt.done
		rt.rt.closePools() // its own pools only: the base serves other hosts
		r.o.log.Info("vigil: idle upstream stopped", "upstream", rt.up.String(), "idle_for", r.idle.String())
	}
}
