package statuspage

import "time"

// Schema names the version of the JSON document (Page.Schema). Fields may
// be added within a version; none is removed, renamed or given another
// meaning.
const Schema = "vigil.status/v1"

// Page is what the handler shows: its JSON form as served, and the model
// the HTML page is rendered from. docs/status.md documents every field.
//
// Conventions: every key is always present. Times are RFC 3339 in UTC, null
// when unknown or not applicable; durations are milliseconds ("_ms"),
// possibly fractional; lists are never null. A pointer field is null when
// the library does not report that figure (see the field).
type Page struct {
	Schema      string    `json:"schema"`       // Schema
	GeneratedAt time.Time `json:"generated_at"` // when the page was made
	// Upstreams are the upstreams shown, by name. When there are more
	// than Config.MaxUpstreams, those with an unhealthy address or a
	// failing DNS are shown first and UpstreamsOmitted says how many
	// others were left out.
	Upstreams        []Upstream `json:"upstreams"`
	UpstreamsOmitted int        `json:"upstreams_omitted"`
}

// Upstream is one upstream: its DNS name, its checker and its addresses.
type Upstream struct {
	Name    string `json:"name"`     // "api.internal:8080", or the name alone for SRV (as vigil.Upstream.String)
	DNSName string `json:"dns_name"` // the normalized name
	Policy  string `json:"policy"`   // the balancer's policy: "round-robin", "least-request", ...
	// Targets, Healthy, Unhealthy and Ejected count the live addresses:
	// all of them, also those left out of Addresses.
	Targets   int     `json:"targets"`
	Healthy   int     `json:"healthy"`
	Unhealthy int     `json:"unhealthy"`
	Ejected   int     `json:"ejected"` // passive verdict unhealthy
	Checker   Checker `json:"checker"`
	DNS       DNS     `json:"dns"`
	// Addresses are the live addresses in canonical order (IP, port,
	// hostname). When there are more than Config.MaxAddresses, the
	// unhealthy ones are shown first and AddressesOmitted says how many
	// were left out.
	Addresses        []Address `json:"addresses"`
	AddressesOmitted int       `json:"addresses_omitted"`
	// Remembered are departed addresses whose state the checker keeps:
	// what each will have if it comes back. RememberedTotal is how many
	// the checker keeps; the list holds at most Config.MaxRemembered of
	// them, and may hold fewer (see docs/status.md).
	Remembered      []Address `json:"remembered"`
	RememberedTotal int       `json:"remembered_total"`
}

// Checker holds the counters of an upstream's checker.
type Checker struct {
	Version         uint64 `json:"version,string"` // of the last address set applied; "0" before the first (a string: versions pass 2^53)
	ChangesApplied  uint64 `json:"changes_applied"`
	ChangesIgnored  uint64 `json:"changes_ignored"` // not newer than the one applied
	ProbesStarted   uint64 `json:"probes_started"`
	ProbesCompleted uint64 `json:"probes_completed"`
	ProbesDropped   uint64 `json:"probes_dropped"` // their target left or the probe settings changed
	ProbesInFlight  int    `json:"probes_in_flight"`
	Transitions     uint64 `json:"transitions"` // status changes
	Ejections       uint64 `json:"ejections"`   // passive ejections started
}

// DNS is what an upstream's resolver.Source knows (resolver.State).
type DNS struct {
	Name       string   `json:"name"`           // as asked
	Types      []string `json:"types"`          // query types: "A", "AAAA", "SRV"
	Running    bool     `json:"running"`        // the source runs
	Version    uint64   `json:"version,string"` // of the address set in effect; "0" before the first (a string: versions pass 2^53)
	Addresses  int      `json:"addresses"`      // in the set in effect, holds included
	Candidates []string `json:"candidates"`     // names tried, in order: more than one with a search list
	Following  string   `json:"following"`      // the candidate that answered last; "" if none
	// Answer is the last answer that gave records; null before the first.
	Answer *Answer `json:"answer"`
	// Failures counts the resolutions in a row that failed, in full or in
	// part; 0 after one that did not. Error is the last failure's text
	// (it stays after a recovery: see ErrorAt); "" if none.
	Failures int        `json:"failures"`
	Error    string     `json:"error"`
	ErrorAt  *time.Time `json:"error_at"`
	// Next is when the next resolution is due (a retry, after failures);
	// null while the source does not run.
	Next *time.Time `json:"next"`
}

// Answer is a DNS answer with records.
type Answer struct {
	At        time.Time `json:"at"`          // when it arrived
	TTLMs     float64   `json:"ttl_ms"`      // the smallest TTL it carried, before the clamp to [MinTTL, MaxTTL]
	TTLLeftMs float64   `json:"ttl_left_ms"` // what was left of it when the page was made
	// Addresses are the answer's addresses ("ip:port"), at most
	// Config.MaxAddresses; AddressesOmitted counts the others.
	Addresses        []string `json:"addresses"`
	AddressesOmitted int      `json:"addresses_omitted"`
}

// Address is one address of an upstream, live or remembered.
type Address struct {
	Address  string `json:"address"`  // "ip:port" ("[v6]:port")
	Hostname string `json:"hostname"` // the name it was resolved for (the SRV target, or the name)
	Weight   uint16 `json:"weight"`   // SRV weight; 0 for A/AAAA
	Priority uint16 `json:"priority"` // SRV priority
	Status   string `json:"status"`   // "healthy" or "unhealthy": unhealthy when either verdict is
	Reason   string `json:"reason"`   // why the last verdict change happened
	// Active is the verdict of the probes, Passive that of the traffic,
	// each with its consecutive outcomes.
	Active     Verdict    `json:"active"`
	Passive    Verdict    `json:"passive"`
	Ejection   Ejection   `json:"ejection"`
	LastChange *time.Time `json:"last_change"` // when Status last changed, or when the address became a target
	// LastProbe is the last active probe; null before the first.
	LastProbe *Probe `json:"last_probe"`
	// InFlight counts this client's requests to the address under way,
	// and Picks the requests the balancer picked it for so far; Share is
	// its part of the upstream's picks (0 to 1). Null for an address that
	// has never been a candidate (and Share before the upstream's first
	// pick).
	InFlight *int64   `json:"in_flight"`
	Picks    *int64   `json:"picks"`
	Share    *float64 `json:"share"`
	// Fleet is the address's role in a fleet sharing verdicts; null
	// without one (see WithRoles).
	Fleet *FleetRole `json:"fleet"`
	// Changes are the address's last status changes, oldest first, at
	// most Config.MaxChanges; empty while the checker keeps no history
	// (the timeline then starts at LastChange).
	Changes []Change `json:"changes"`
}

// Verdict is one verdict and its counters.
type Verdict struct {
	Status       string `json:"status"` // "healthy" or "unhealthy"
	Successes    int    `json:"successes"`
	HTTPFailures int    `json:"http_failures"`
	TCPFailures  int    `json:"tcp_failures"`
	Timeouts     int    `json:"timeouts"`
}

// Ejection is the state of an address's passive ejections.
type Ejection struct {
	Ejected   bool       `json:"ejected"`   // the passive verdict is unhealthy
	Until     *time.Time `json:"until"`     // when the ejection ends; null when not ejected
	Ejections int        `json:"ejections"` // recent ejections: the next one lasts longer
	Probation bool       `json:"probation"` // an ejection ended: one passive failure ejects again
}

// Probe is an address's last active probe.
type Probe struct {
	At time.Time `json:"at"` // when it started
	// DurationMs is from its start to its outcome; null while the checker
	// does not report it.
	DurationMs *float64 `json:"duration_ms"`
	// Outcome is "success", "http_failure", "tcp_failure", "timeout" or
	// "ignored"; "" while the checker does not report it (or the probe is
	// still under way), and so is Reason.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// Change is one status change of an address.
type Change struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"` // "healthy", "unhealthy", or "unknown" (not a target before)
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// FleetRole is an address's role in a fleet sharing verdicts: what Roles
// said (see Role).
type FleetRole struct {
	Kind      string  `json:"kind"`      // "prober", "follower" or "local"
	Rank      int     `json:"rank"`      // prober: its rank among the address's probers, 1 first; else 0
	Member    string  `json:"member"`    // follower: the member whose verdict applies; else ""
	Reason    string  `json:"reason"`    // follower: that verdict's reason
	AgeMs     float64 `json:"age_ms"`    // follower: that verdict's age
	Disagrees bool    `json:"disagrees"` // this member keeps disagreeing with the fleet's verdict on it
}
