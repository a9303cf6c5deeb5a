// Package statuspage serves a status page of vigil upstreams: what an
// operator needs to see, one request away, when traffic avoids an address.
//
// A Handler shows, for every upstream that an Upstreams value holds (a
// *vigil.Client, a *vigilgrpc.Builder, or Of(upstreams...) for upstreams
// held by hand), what its DNS source knows (the name, the record types, the
// last answer with its remaining TTL, failures in a row, the last error,
// the next query, the search candidate followed), and for every address:
// its status, the active and passive verdicts with their counters and the
// reason of the last change, the passive ejection (until when, how many
// recent ones) and probation, the last probe, the requests in flight and
// its share of the traffic, its role in a fleet sharing verdicts, and a
// timeline of its status changes; then the departed addresses the checker
// remembers, with the state each gets back when it returns.
//
//	h, err := statuspage.New(client, statuspage.Config{})
//	if err != nil { ... }
//	admin := http.NewServeMux()
//	admin.Handle("/vigil/", h)
//	go http.ListenAndServe("127.0.0.1:9901", admin) // an admin port
//
// People get one HTML page, rendered on the server, that needs nothing
// else: no script, no style sheet or font or image to fetch (the style is
// inline, the pictures are inline SVG), so it works offline and behind any
// proxy, and it reloads itself every Config.Refresh while it is open.
// Tools get the same data as JSON (Page, whose schema is versioned by
// Schema and documented in docs/status.md) when the request's Accept
// prefers application/json, or its query says format=json. The HTML is
// rendered from the same Page.
//
// # Safe on an admin port
//
// The page answers GET and HEAD, and 405 to every other method; a GET
// changes nothing in the upstreams. It shows no configuration, so no
// header value, TLS material or credential; free text (reasons, DNS
// errors) has the user information and query values of any URL in it
// redacted, as well as "password=..."-like pairs, and is cut to a few
// hundred bytes. Its size is bounded: Config caps the upstreams, addresses,
// remembered addresses and status changes shown, and the page says how
// many it left out (those in trouble are shown first). Responses are not
// cached, and carry a Content-Security-Policy that allows no script, no
// frame and no request. Serve it on an address only operators reach: it
// names every backend.
//
// # Fleet roles
//
// The page does not import the fleet package (nor NATS, nor grpc-go):
// WithRoles takes a Roles function that says each address's role, and
// a *fleet.Fleet gives its roles in one line: WithRoles(f.StatusRole).
//
// # Concurrency
//
// A Handler is safe for concurrent use. It starts no goroutine and holds
// nothing between requests: each request reads the upstreams then, with the
// cheap snapshots their parts offer (health.Checker.Targets and
// RememberedTargets, resolver.Source.State).
package statuspage
