package health

import (
	"context"

	"github.com/vigil-go/vigil/resolver"
)

// Prober probes one address: a custom check in place of the HTTP, HTTPS and
// TCP probes (Active.Prober). The checker calls Probe with a context that
// ends at the probe's timeout (Active.Timeout) or when the checker stops;
// the address has Active.Port applied. At most one Probe per target runs at
// a time; probes of different targets run concurrently.
//
// Probe returns the outcome and a short reason for it ("NOT_SERVING",
// "connection refused", ...), which becomes the StatusChange's Reason when
// the outcome changes the target's status. ProbeIgnored changes nothing.
// An outcome outside the ProbeOutcome constants counts as ProbeTCPFailure.
type Prober interface {
	Probe(ctx context.Context, a resolver.Address) (ProbeOutcome, string)
}

// ProberFunc is a function that is a Prober.
type ProberFunc func(ctx context.Context, a resolver.Address) (ProbeOutcome, string)

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, a resolver.Address) (ProbeOutcome, string) {
	return f(ctx, a)
}
