package resolver

import (
	"context"
	"net/netip"
	"sync"
)

// famOutcome is the outcome of looking up one family (A or AAAA) of one
// name.
type famOutcome struct {
	ips []netip.Addr
	ttl uint32 // the chain's smallest TTL, or the negative TTL
	err error  // nil (then ips is not empty), negative (ErrNXDomain, ErrNoData) or a failure
}

// family looks up the records of qtype (dns.TypeA or dns.TypeAAAA) of name.
func (l *lookup) family(ctx context.Context, p *plan, name string, qtype uint16) famOutcome {
	ans, err := l.records(ctx, p, name, qtype)
	if err != nil {
		return famOutcome{ttl: ans.ttl, err: err}
	}
	out := famOutcome{ttl: ans.ttl, ips: make([]netip.Addr, 0, len(ans.recs))}
	for _, rr := range ans.recs {
		if ip, ok := rrAddr(rr); ok {
			out.ips = append(out.ips, ip)
		}
	}
	return out
}

// families looks up the families qtypes of name at the same time: one
// round trip of wall time for A and AAAA, not two. It returns when every
// lookup has.
func (l *lookup) families(ctx context.Context, p *plan, name string, qtypes []uint16) []famOutcome {
	outs := make([]famOutcome, len(qtypes))
	if len(qtypes) == 1 {
		outs[0] = l.family(ctx, p, name, qtypes[0])
		return outs
	}
	var wg sync.WaitGroup
	for i, qtype := range qtypes {
		wg.Go(func() { outs[i] = l.family(ctx, p, name, qtype) })
	}
	wg.Wait()
	return outs
}
