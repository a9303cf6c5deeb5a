// Package vigilgrpc gives grpc-go clients vigil's DNS and health checking:
// addresses that follow the records' TTLs, and RPCs that go only to
// addresses vigil holds healthy, judged by probes and by the RPCs'
// outcomes.
//
// grpc-go's own dns resolver ignores TTLs: it resolves again only when a
// connection fails, and at most every 30 seconds, so a new address can go
// without RPCs for as long as nothing breaks. Its client-side health
// checking forgets everything about an address that leaves the set and
// comes back. Switching a client takes two lines:
//
//	b, err := vigilgrpc.NewBuilder(vigil.Config{})           // a template: Name and Port come from each target
//	cc, err := grpc.NewClient("vigil:///api.internal:50051", // was "dns:///api.internal:50051"
//		grpc.WithResolvers(b), grpc.WithTransportCredentials(creds))
//
// # Resolver
//
// A Builder is a grpc-go resolver.Builder; grpc.WithResolvers hands it to
// one ClientConn without touching grpc-go's global registry. Each target
// is served by a vigil.Upstream made from the Builder's template, with the
// target's name and port (or the SRV name, for an SRV template): it
// resolves again when the TTL runs out, keeps every address's health
// across changes, and remembers an address that leaves. ClientConns of one
// Builder that dial one target share its upstream; it stops when the last
// of them closes its resolver, which grpc-go also does when a ClientConn
// goes idle (grpc.WithIdleTimeout, 30 minutes by default).
//
// An idle channel keeps its verdicts: a Builder keeps one health.Memory
// for all its upstreams (vigil.DefaultSharedMemory targets, or the one of
// vigil.WithMemory among WithUpstreamOptions). A stopping upstream leaves
// its targets' state there, and the next upstream of the target, when RPCs
// bring the channel back, takes it back before any probe: a backend
// ejected before stays ejected. The next upstream starts only once the
// last one's Run has returned; a ClientConn whose resolver is built
// meanwhile waits for it, as its RPCs wait for a first resolution.
//
// # Load balancing
//
// The resolver selects the vigil policy (PolicyName) through its service
// config. The policy keeps a SubConn for every target, healthy or not, and
// its picker asks the upstream's balancer for every RPC: the upstream's
// policy (round robin over SRV weights by default, least request, peak
// EWMA, consistent hashing with ContextWithHashKey) and priority levels
// choose, skipping the targets that are not healthy with a ready SubConn.
// The policy installs a new picker at every change of the checker, and the
// balancer never hands out a target after the checker holds it unhealthy,
// so from that moment no RPC is picked for it: there is no delay while a
// new address list travels through grpc-go, as there would be with a
// resolver that gave a standard policy only the healthy addresses. Addresses that leave and come back return with their
// remembered verdicts. When no target is healthy, RPCs fail with
// UNAVAILABLE, and wait-for-ready RPCs wait for one. The balancer's panic
// mode (balancer.WithPanicThreshold) does not apply: RPCs go to healthy
// targets only.
//
// # Passive checks
//
// Every RPC's outcome is reported to the address that served it, from the
// picker's Done callback, which knows that address exactly (an interceptor
// would see only the peer's IP and port, which two targets of different
// names can share): OK and the codes that are the application's answer
// are successes; UNAVAILABLE is a connection failure, DEADLINE_EXCEEDED a
// timeout, CANCELLED nothing; the codes of WithFailureCodes
// (DefaultFailureCodes: INTERNAL, DATA_LOSS) are failures of the backend's
// (health.Checker.ReportFailure). A server
// that sends grpc-retry-pushback-ms with UNAVAILABLE or RESOURCE_EXHAUSTED
// has the address ejected for that long, as an HTTP Retry-After does. A
// pick whose RPC never reached a server is no outcome and, under peak
// EWMA, no latency sample: nothing was sent (the connection was not ready
// after all, or the stream could not be opened), or UNAVAILABLE came with
// nothing received (a stream on a closing connection, one the server
// refused unprocessed, which grpc-go cannot tell from a connection lost
// under the RPC). A status the server sent always counts.
//
// # Probes and the health watch
//
// Prober is a health.Prober that calls the standard gRPC health service
// (grpc.health.v1 Check) over a connection of its own per probe. A Builder
// whose template chooses no probe uses one, over the ClientConn's
// transport credentials. Probes see a NOT_SERVING at the next probe; the
// health watch (WithHealthWatch, on by default with the gRPC health
// prober) hears of it at once: every connection of the policy keeps
// grpc-go's Watch stream open (gRFC A17), and each change of the server's
// serving status becomes the target's active verdict.
//
// # Concurrency and lifecycle
//
// Builder, Prober and the policy are safe for concurrent use. A resolver
// costs one goroutine, the policy one per ClientConn and, with the health
// watch, one per connection; an upstream costs what vigil.Upstream.Run
// does. All of them end when the ClientConn closes. The policy's
// registration with grpc-go (PolicyName, in init) is the package's only
// global state; the package also imports google.golang.org/grpc/health,
// which sets grpc-go's client health-check hook.
package vigilgrpc
