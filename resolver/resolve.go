package resolver

import (
	"context"
	"errors"
	"slices"

	"github.com/miekg/dns"
)

// result is the outcome of resolving the configured name.
type result struct {
	name  string // the candidate that answered, fully qualified (see plan.names)
	addrs []Address
	ttl   uint32 // smallest TTL involved; for negative answers the negative TTL
	// vanished holds the SRV target families whose lookups were negative
	// (NXDOMAIN or NODATA for every family asked): those targets
	// contribute no address to addrs.
	vanished []part
	// failed holds the families whose lookups failed (a timeout, SERVFAIL,
	// ...): of the name itself for Type IP, of SRV targets for Type SRV.
	// They contribute no address to addrs; the Source keeps their last
	// ones. err says why.
	failed []part
	err    error // the failures behind failed; nil when failed is empty
}

// negative reports whether err is an authoritative "no such records":
// NXDOMAIN or NODATA.
func negative(err error) bool {
	return errors.Is(err, ErrNXDomain) || errors.Is(err, ErrNoData)
}

// resolve resolves the configured name: the candidate follow when it is
// one of p.names and still exists, else the first of p.names that does. A
// candidate exists when it has records of the type asked (for Type IP, of
// either family); one that is NXDOMAIN or NODATA is passed over, and any
// other failure of a candidate ends the walk with that failure, so that a
// lower candidate is never taken because a higher one could not be asked.
// When no candidate exists the error is negative, with the smallest
// negative TTL.
func (l *lookup) resolve(ctx context.Context, p *plan, cfg Config, follow string) (result, error) {
	var negs []error
	ttl := ^uint32(0)
	note := func(res result, err error) {
		negs = append(negs, err)
		if res.ttl > 0 {
			ttl = min(ttl, res.ttl)
		}
	}
	asked := ""
	if follow != "" && slices.Contains(p.names, follow) {
		res, err := l.resolveName(ctx, p, cfg, follow)
		if !negative(err) {
			return res, err
		}
		note(res, err) // it stopped existing: walk the candidates again
		asked = follow
	}
	for _, name := range p.names {
		if name == asked {
			continue
		}
		res, err := l.resolveName(ctx, p, cfg, name)
		if !negative(err) {
			return res, err
		}
		note(res, err)
	}
	if ttl == ^uint32(0) {
		ttl = 0
	}
	return result{ttl: ttl}, join(negs...)
}

// resolveName resolves the fully qualified name to its address set.
func (l *lookup) resolveName(ctx context.Context, p *plan, cfg Config, name string) (result, error) {
	if cfg.Type != SRV {
		return l.resolveIP(ctx, p, cfg, name)
	}
	ans, err := l.records(ctx, p, name, dns.TypeSRV)
	if err != nil {
		return result{ttl: ans.ttl}, err
	}
	res, err := l.resolveSRV(ctx, p, cfg.Family, ans)
	res.name = name
	return res, err
}

// resolveIP resolves the A and the AAAA records of name (those
// cfg.families asks for) at the same time, as one set:
//
//   - a family with addresses is used; a family that is NODATA or NXDOMAIN
//     next to one with addresses contributes nothing and is no failure;
//   - a family whose lookup failed (timeout, SERVFAIL, ...) next to one
//     with addresses is in result.failed, so that its last addresses are
//     kept, and its error in result.err: a partial failure;
//   - without addresses in any family, the outcome is negative when every
//     family was, else a failure: a negative answer next to a failed one
//     does not tell that the name is gone, and the whole last set is kept.
func (l *lookup) resolveIP(ctx context.Context, p *plan, cfg Config, name string) (result, error) {
	qtypes := cfg.families().qtypes()
	outs := l.families(ctx, p, name, qtypes)
	host := NormalizeName(name)
	res := result{name: name, ttl: ^uint32(0)}
	negTTL := ^uint32(0)
	var failures, negs []error
	for i, out := range outs {
		switch {
		case out.err == nil:
			for _, ip := range out.ips {
				res.addrs = append(res.addrs, Address{IP: ip, Port: cfg.Port, Hostname: host})
			}
			res.ttl = min(res.ttl, out.ttl)
		case negative(out.err):
			negs = append(negs, out.err)
			if out.ttl > 0 {
				negTTL = min(negTTL, out.ttl)
			}
		default:
			failures = append(failures, out.err)
			res.failed = append(res.failed, partFor(host, qtypes[i]))
		}
	}
	switch {
	case len(res.addrs) > 0:
		res.addrs = canonical(res.addrs)
		res.err = join(failures...)
		return res, nil
	case len(failures) > 0:
		return result{}, join(failures...)
	}
	if negTTL == ^uint32(0) {
		negTTL = 0
	}
	return result{ttl: negTTL}, join(negs...)
}

// join returns nil for no errors, the error itself for one, and
// errors.Join of them for more.
func join(errs ...error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
