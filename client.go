package vigil

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/namedbus"
	"github.com/vigil-go/vigil/internal/urlport"
	"github.com/vigil-go/vigil/resolver"
)

// DefaultIdleTimeout is how long an upstream made from a Client's template
// may go without a request before it is stopped, unless ClientConfig says
// otherwise.
const DefaultIdleTimeout = 5 * time.Minute

// DefaultMaxTemplateUpstreams is how many upstreams made from a Client's
// template may run at once, unless ClientConfig says otherwise.
const DefaultMaxTemplateUpstreams = 64

// DefaultSharedMemory is the size of the Memory a Client, or a vigilgrpc
// Builder, keeps for all its upstreams, unless told otherwise: the
// departed and stopped targets of DefaultMaxTemplateUpstreams upstreams of
// 64 addresses each.
const DefaultSharedMemory = 4096

// ErrClosed is matched by the errors of a Client's requests after Close.
var ErrClosed = errors.New("vigil: client closed")

// ErrTooManyUpstreams is matched by the error of a request for a new host
// when ClientConfig.MaxTemplateUpstreams upstreams made from the template
// run already.
var ErrTooManyUpstreams = errors.New("vigil: too many upstreams made from the template")

// ClientConfig configures a Client. Zero values mean the documented
// defaults.
type ClientConfig struct {
	// Defaults is what every entry of Upstreams and the Template start
	// from: each field an entry leaves at its zero value takes the
	// Defaults' value. Structs (Resolver, Health, and the structs inside
	// them) are filled field by field; a slice, a map, a pointer or an
	// interface is one value (a non-empty one replaces the Defaults', it
	// is not appended to them). Name and Port are each upstream's own:
	// Defaults leaves them zero.
	//
	// The rule's one limit: a zero cannot override a non-zero default. An
	// entry that needs a field's zero meaning where Defaults set the field
	// gives the value that zero stands for (Interval: time.Second, Type:
	// resolver.IP, Initial: health.Healthy), or the field stays out of
	// Defaults when its zero has no other spelling (Resolver.Servers, to
	// read resolv.conf; Health.Active.Type, to probe with health.HTTP).
	Defaults Config
	// Upstreams are served from the start, each by its own Upstream: a
	// request whose URL names one (its host and, for A/AAAA, its port)
	// goes to that upstream's healthy addresses.
	Upstreams []Config
	// Template, when not nil, makes an upstream on first use for any other
	// host a request names (and Hosts accepts): Template with Name and
	// Port taken from the request's URL (the scheme's default port when
	// the URL has none). A host that is an IP address never gets one.
	//
	// Each such upstream resolves the name and probes every address it
	// resolves to until IdleTimeout passes without a request. When request
	// URLs come from outside (webhooks, link previews, anything a user
	// types), restrict Template with Hosts: otherwise one request for a
	// URL someone else chose makes the Client probe whatever that name
	// resolves to, for minutes.
	Template *Config
	// Hosts says which host names Template serves; nil: every one. It is
	// called outside the Client's locks and may call the Client.
	Hosts func(host string) bool
	// MaxTemplateUpstreams caps how many upstreams made from Template run
	// at once: past it, a request for another new host fails with an
	// error matching ErrTooManyUpstreams (hosts with a running upstream
	// are served as before). 0 means DefaultMaxTemplateUpstreams; < 0: no
	// limit. Upstreams configured up front do not count.
	MaxTemplateUpstreams int
	// Base carries every request no upstream serves; nil:
	// http.DefaultTransport. Any RoundTripper will do.
	Base http.RoundTripper
	// IdleTimeout stops an upstream made from Template after that long
	// without a request; a later request makes it anew, and the new one
	// continues from the old one's state (see Memory). 0 means
	// DefaultIdleTimeout; < 0 keeps them until Close.
	IdleTimeout time.Duration
	// Memory is how many targets the health.Memory that all the client's
	// upstreams share holds (their Health.Memory no longer sizes each
	// one's): addresses that left an upstream, and the targets of an
	// upstream that stopped. An upstream made from Template anew after an
	// idle stop, on the next request for its host, starts from the old
	// one's targets: their verdicts, counters and ejections are restored
	// before any probe, then probed at once (DESIGN R9), so a backend
	// found failing is not trusted again because nobody asked for its host
	// for a while. State is kept while the bound allows (the least recently
	// departed go first) and at most health.MaxMemoryAge (an hour) after
	// it left; a host unused for longer starts afresh. 0 means
	// DefaultSharedMemory; < 0: no shared memory, each upstream remembers
	// in its own (Health.Memory) and an idle stop forgets. WithMemory gives
	// the client a Memory to use instead, which it may share with other
	// clients and upstreams of other names. An upstream whose Health.Memory
	// is negative remembers nothing either way.
	Memory int
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
// bus the two would take each other's address sets. Invalid configuration
// gives a *ConfigError naming the field ("Defaults.Resolver.Servers[0]",
// "Upstreams[1].Port", "Template.Health.Active.Path").
func NewClient(cfg ClientConfig, opts ...Option) (*Client, error) {
	o := buildOptions(opts)
	if err := checkDefaults(cfg.Defaults, o); err != nil {
		return nil, err
	}
	r := &router{
		base:      cfg.Base,
		o:         o,
		hosts:     cfg.Hosts,
		idle:      cfg.IdleTimeout,
		templates: cfg.MaxTemplateUpstreams,
		routes:    make(map[routeKey]*route),
		stopping:  make(map[routeKey]*route),
	}
	if r.base == nil {
		r.base = http.DefaultTransport
	}
	if r.idle == 0 {
		r.idle = DefaultIdleTimeout
	}
	if r.templates == 0 {
		r.templates = DefaultMaxTemplateUpstreams
	}
	if t := cfg.Template; t != nil {
		tc := withDefaults(*t, cfg.Defaults) // a copy: the caller may go on changing its own
		if err := checkPartial("Template", tc, o); err != nil {
			return nil, err
		}
		r.template = &tc
	}
	if r.o.memory == nil && cfg.Memory >= 0 {
		r.o.memory = health.NewMemory(cmp.Or(cfg.Memory, DefaultSharedMemory))
	}
	r.ownBus = o.bus == nil
	if r.ownBus {
		r.o.bus = events.New(events.WithLogger(o.log))
	}
	r.buses = namedbus.New(r.o.bus, o.log)
	type made struct {
		u       *Upstream
		release func()
	}
	var ups []made
	fail := func(err error) (*Client, error) {
		for _, m := range ups {
			m.release()
		}
		if r.ownBus {
			r.o.bus.Close()
		}
		return nil, err
	}
	for i, uc := range cfg.Upstreams {
		u, release, err := r.newUpstream(withDefaults(uc, cfg.Defaults))
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
// connections, the base's too. Requests after Close fail with ErrClosed; a
// request routed before Close may still complete, and its connection is
// closed once its response body is read to its end or closed. Close is
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
	r.closeBaseIdle()
	if r.ownBus {
		r.o.bus.Close()
	}
	return nil
}

// Upstream returns the upstream that serves requests for hostport, if one
// runs now. "host:port" names the upstream of that port (or the name's SRV
// upstream, which serves every port). A bare "host" names the name's
// upstream whatever its port; when upstreams of the name run on several
// ports, a bare host names none of them (give the port, or look among
// Upstreams). The host is normalized ("API.internal." is "api.internal").
func (c *Client) Upstream(hostport string) (*Upstream, bool) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "" // no port
	}
	name := resolver.NormalizeName(host)
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, false
		}
		if rt := r.find(routeKey{name, uint16(p)}); rt != nil {
			return rt.up, true
		}
		return nil, false
	}
	var found *Upstream
	for k, rt := range r.routes {
		if k.host != name {
			continue
		}
		if found != nil {
			return nil, false // several ports
		}
		found = rt.up
	}
	return found, found != nil
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
	r.closeBaseIdle()
}

// closeBaseIdle closes the base's idle connections, when it has such a
// method.
func (r *router) closeBaseIdle() {
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Bus returns the bus the client's upstreams publish on (all but those of
// a name another upstream on it already has: see NewClient).
func (c *Client) Bus() *events.Bus { return c.r.o.bus }

// router is the Client's RoundTripper.
type router struct {
	base      http.RoundTripper
	o         options
	ownBus    bool
	buses     *namedbus.Set // which bus each upstream gets
	template  *Config
	hosts     func(string) bool
	idle      time.Duration
	templates int // the most upstreams from the template at once; < 0: no limit

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // upstreams' Runs and the janitor

	mu       sync.Mutex
	routes   map[routeKey]*route
	stopping map[routeKey]*route // stopped for idleness, their Run not returned yet
	closed   bool
	atLimit  bool // the last new host was refused for the template's limit
}

// routeKey is what a request is routed by: the normalized host name and the
// port (0 for SRV upstreams, which serve any port).
type routeKey struct {
	host string
	port uint16
}

func keyOf(u *Upstream) routeKey { return routeKey{u.name, u.port} }

// String returns "host:port", or the host alone for an SRV upstream's key.
func (k routeKey) String() string {
	if k.port == 0 {
		return k.host
	}
	return net.JoinHostPort(k.host, strconv.Itoa(int(k.port)))
}

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

// closeIdleIfStopped closes the idle connections of the route's pools once
// its upstream has stopped: a connection that turns idle after the one
// CloseIdleConnections of Close or of an idle stop would stay open, since
// no request reaches the route any more.
func (rt *route) closeIdleIfStopped() {
	select {
	case <-rt.done:
		rt.rt.CloseIdleConnections()
	default:
	}
}

// watch returns body such that reading it to its end, or closing it, calls
// closeIdleIfStopped: its connection is back in its pool by then. A body
// that is also a Writer (a protocol switch) is returned as it is: its
// connection never goes back to a pool.
func (rt *route) watch(body io.ReadCloser) io.ReadCloser {
	if body == nil || body == http.NoBody {
		return body
	}
	if _, ok := body.(io.Writer); ok {
		return body
	}
	return &routeBody{ReadCloser: body, rt: rt}
}

// routeBody is a response body of a route; see route.watch.
type routeBody struct {
	io.ReadCloser
	rt *route
}

func (b *routeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rt.closeIdleIfStopped()
	}
	return n, err
}

func (b *routeBody) Close() error {
	err := b.ReadCloser.Close()
	b.rt.closeIdleIfStopped()
	return err
}

// ownBase is the client's base as each upstream's Transport sees it:
// without CloseIdleConnections, which the router calls once itself rather
// than once per upstream (and at every idle stop).
type ownBase struct{ http.RoundTripper }

// start runs u under the client, and release once its Run has returned;
// r.mu is held or the client is not shared yet.
func (r *router) start(u *Upstream, release func(), template bool) *route {
	ctx, stop := context.WithCancel(r.ctx)
	k := keyOf(u)
	rt := &route{up: u, rt: u.transport(ownBase{r.base}), template: template, stop: stop, done: make(chan struct{})}
	rt.used.Store(time.Now().UnixNano())
	r.routes[k] = rt
	r.wg.Go(func() {
		defer close(rt.done) // after it is no longer stopping: a waiting request finds it gone
		if err := u.Run(ctx); err != nil {
			r.o.log.Error("vigil: upstream's Run failed", "upstream", u.String(), "err", err)
		}
		release()
		r.mu.Lock()
		if r.stopping[k] == rt {
			delete(r.stopping, k)
		}
		r.mu.Unlock()
	})
	return rt
}

// find returns the route of a request with key k, if there is one; r.mu
// is held.
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
	rt, err := r.route(req.Context(), req.URL) // counts the request in flight
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
	// A connection taken after the route stopped (Close, an idle stop) went
	// to a pool nothing reaches any more: close it once it is idle, now
	// (a response without a body) or at the body's end.
	rt.closeIdleIfStopped()
	if resp != nil {
		resp.Body = rt.watch(resp.Body)
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
// Where the host's last upstream from the template is still stopping, it
// waits within ctx for that upstream's Run to return first (see
// fromTemplateFor).
func (r *router) route(ctx context.Context, u *url.URL) (*route, error) {
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
	rt, made, refused, stopping, err := r.fromTemplateFor(k, u.Host)
	for stopping != nil {
		select {
		case <-stopping:
		case <-ctx.Done():
			return nil, fmt.Errorf("vigil: request for %s: waiting for the host's idle upstream to stop: %w", u.Host, context.Cause(ctx))
		}
		rt, made, refused, stopping, err = r.fromTemplateFor(k, u.Host)
	}
	switch { // logged outside r.mu: the handler is the caller's code
	case made:
		r.o.log.Info("vigil: upstream started from the template", "upstream", rt.up.String(), "reason", "first request for the host")
	case refused:
		r.o.log.Warn("vigil: new hosts refused: the template's upstreams reached their limit",
			"host", u.Host, "limit", r.templates, "setting", "ClientConfig.MaxTemplateUpstreams")
	}
	return rt, err
}

// fromTemplateFor returns the route of key k, counted in flight, made from
// the template unless another request made it meanwhile (made says which),
// or an error; refused reports the first refusal since the template's
// limit was reached. host is the URL's, for errors.
//
// While the last upstream of k is stopping (idle), it makes none and
// returns stopping, closed once that upstream's Run has returned: the
// next one starts from what the last one left in the client's memory
// (R9), which two running at once would overwrite. The caller waits for
// it outside r.mu, so requests for other hosts go on meanwhile.
func (r *router) fromTemplateFor(k routeKey, host string) (rt *route, made, refused bool, stopping <-chan struct{}, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, false, nil, fmt.Errorf("vigil: request for %s: %w", host, ErrClosed)
	}
	if rt := r.find(k); rt != nil { // made meanwhile by another request
		rt.inFlight.Add(1)
		return rt, false, false, nil, nil
	}
	if old := r.stoppingFor(k); old != nil {
		return nil, false, false, old.done, nil
	}
	if n := r.fromTemplate(); r.templates >= 0 && n >= r.templates {
		refused, r.atLimit = !r.atLimit, true
		return nil, false, refused, nil, fmt.Errorf("vigil: no upstream for %s: %d upstreams made from the template run already, the limit (ClientConfig.MaxTemplateUpstreams): %w",
			host, n, ErrTooManyUpstreams)
	}
	r.atLimit = false
	cfg := *r.template
	cfg.Name, cfg.Port = k.host, k.port
	up, release, err := r.newUpstream(cfg)
	if err != nil {
		return nil, false, false, nil, fmt.Errorf("vigil: no upstream for %s: %w", host, err)
	}
	rt = r.start(up, release, true)
	rt.inFlight.Add(1)
	return rt, true, false, nil, nil
}

// stoppingFor returns the stopping route a request with key k would have
// had, if there is one; r.mu is held.
func (r *router) stoppingFor(k routeKey) *route {
	if rt := r.stopping[k]; rt != nil {
		return rt
	}
	return r.stopping[routeKey{host: k.host}]
}

// fromTemplate returns how many upstreams made from the template run;
// r.mu is held.
func (r *router) fromTemplate() int {
	n := 0
	for _, rt := range r.routes {
		if rt.template {
			n++
		}
	}
	return n
}

// existing returns the route of key k, counted in flight, if there is one.
func (r *router) existing(k routeKey) (*route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("vigil: request for %s: %w", k, ErrClosed)
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
			r.stopping[k] = rt // until its Run returns, a request for k waits (fromTemplateFor)
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
