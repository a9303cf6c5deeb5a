// Package vigil keeps client-side health checking correct while DNS keeps
// changing. It is the one door to the library: one Upstream per DNS name,
// and a Client (an *http.Client) over many.
//
// An Upstream ties together what keeps one name's traffic on healthy
// addresses: a resolver.Source that re-resolves the name as its records'
// TTLs run out (A and AAAA by default, or SRV), a health.Checker that probes
// every address and judges the traffic's outcomes, keeping each address's
// status across every change of the address set, and a balancer.Balancer
// that picks healthy addresses only. The name is given once; the parts
// share one bus and one logger, and Run starts and stops them all:
//
//	u, err := vigil.New(vigil.Config{
//		Name:   "api.internal",
//		Port:   8080,
//		Health: health.Config{Active: health.Active{Path: "/healthz"}},
//	})
//	if err != nil { ... }
//	go u.Run(ctx)
//	client := &http.Client{Transport: u.Transport(nil)}
//	resp, err := client.Get("http://api.internal:8080/v1/items") // waits for the first resolution
//
// A Client routes each request by its URL's host and port to that host's
// upstream, configured up front or made from a template on first use, and
// every other host to its base RoundTripper; ClientConfig.Defaults holds
// what every upstream shares (DNS servers, probes), given once:
//
//	c, err := vigil.NewClient(vigil.ClientConfig{
//		Defaults:  vigil.Config{Resolver: resolver.Config{Servers: []string{"10.0.0.53"}}},
//		Upstreams: []vigil.Config{{Name: "api.internal", Port: 8080}, {Name: "auth.internal", Port: 9000}},
//	})
//	defer c.Close()
//	resp, err := c.Get("http://auth.internal:9000/token")
//
// # Checks
//
// An upstream whose Config names no check (Health.Active without Path,
// Prober or Type) probes each address with a TCP connect, and the passive
// verdict judges its traffic: no backend is held unhealthy for a route it
// never promised. Probing over HTTP needs a Path. See Config.
//
// # Templates and untrusted URLs
//
// A Client with a Template makes an upstream for each new host a request
// names: it resolves the name and probes the addresses until it is idle.
// When URLs come from outside (webhooks, link previews), restrict the
// Template with ClientConfig.Hosts; ClientConfig.MaxTemplateUpstreams (64
// by default) caps how many such upstreams run at once, and a request for a
// new host past it fails with an error matching ErrTooManyUpstreams.
//
// # Requests
//
// A request for an upstream that has not resolved its name yet waits for the
// first resolution within its context (Upstream.WaitReady waits for a
// healthy target explicitly); if the resolution fails first, the request
// fails with that DNS error, inspectable with errors.Is against the
// resolver's sentinel errors. A request for an upstream whose Run was
// never called gives Run RunStartTimeout (1s) to start, so that a request
// made right after `go u.Run(ctx)` is served, then fails with an error
// matching ErrNotRunning that names the upstream. A request whose
// connection fails before anything was written goes to another healthy
// address, and every outcome counts in the target's passive verdict.
//
// # Lifecycle
//
// New and the parts' constructors start nothing. Upstream.Run runs the
// source and the checker and, when its context ends, stops them, waits for
// them and releases the upstream's topics on the bus: no goroutine outlives
// it. NewClient starts its upstreams at once and Client.Close stops them;
// upstreams made from the template stop after ClientConfig.IdleTimeout
// without a request. Invalid configuration is a *ConfigError naming the
// field, never a panic.
//
// # State that outlives its upstream
//
// A name's health state outlives the Upstream that holds it (DESIGN R9).
// Upstreams given one health.Memory with WithMemory share it: when one's
// Run returns it leaves its targets' state there, and the next Upstream of
// the name takes each address's verdicts, counters and ejection back
// before any probe, then probes it at once. A Client keeps one Memory for
// all its upstreams (ClientConfig.Memory), so an upstream made from the
// template anew after an idle stop continues from the old one's state: a
// backend found failing is not trusted again because its host went
// unused for a while. A request for that host while the old upstream is
// still stopping waits for its Run to return (two checkers of a name
// running at once would overwrite each other's state). State is kept
// while the Memory's bound allows and at most health.MaxMemoryAge. An
// Upstream whose Run is called again goes on from its own state.
//
// # Concurrency
//
// Upstream and Client are safe for concurrent use.
package vigil
