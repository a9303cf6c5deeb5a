package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// maxParallelTargets bounds how many SRV targets are looked up at the same
// time (each with its A and AAAA queries at once).
const maxParallelTargets = 8

// resolveSRV turns the SRV records of ans into addresses. Each distinct
// target resolves on its own: for each family fam asks for, its addresses
// come from the additional section or, when it holds none of that family
// for the target, from a follow-up A or AAAA query. Glue may be partial (A
// records without the AAAA ones, say); the set does not depend on it.
// Additional records of names that are not targets, and those of a family
// fam does not ask for, are ignored.
//
// A target whose lookups were all negative is in result.vanished. A family
// of a target whose lookup failed is in result.failed, with its error in
// result.err, and the rest of the set applies; a target that gave no
// address at all while one of its lookups failed has every family in
// result.failed. When no target gave an address and one failed, the whole
// resolution fails: there is no rest to apply.
func (l *lookup) resolveSRV(ctx context.Context, p *plan, fam Family, ans answer) (result, error) {
	qtypes := fam.qtypes()
	var targets []string // distinct, in record order
	isTarget := make(map[string]bool, len(ans.recs))
	for _, rr := range ans.recs {
		srv := rr.(*dns.SRV)
		if t := strings.ToLower(dns.Fqdn(srv.Target)); usable(srv) && !isTarget[t] {
			isTarget[t] = true
			targets = append(targets, t)
		}
	}
	ttl := ans.ttl
	glue := make(map[glueKey][]netip.Addr)
	for _, rr := range ans.extra {
		h := rr.Header()
		owner := strings.ToLower(h.Name)
		if h.Class != dns.ClassINET || h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA || !isTarget[owner] || !fam.allows(h.Rrtype) {
			continue
		}
		ip, ok := rrAddr(rr)
		if !ok {
			return result{}, &QueryError{Name: owner, Type: dns.TypeToString[h.Rrtype], Server: ans.server,
				Err: fmt.Errorf("%w: additional %s record without data", ErrMalformed, dns.TypeToString[h.Rrtype])}
		}
		k := glueKey{owner, h.Rrtype}
		glue[k] = append(glue[k], ip)
		ttl = min(ttl, h.Ttl)
	}

	outs := make([]targetOutcome, len(targets))
	sem := make(chan struct{}, maxParallelTargets)
	var wg sync.WaitGroup
	for i, t := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outs[i] = l.target(ctx, p, t, qtypes, glue)
		})
	}
	wg.Wait()

	res := result{}
	resolved := make(map[string][]netip.Addr, len(targets))
	var errs []error
	gave := false // a target gave an address
	for i, t := range targets {
		out := outs[i]
		host := NormalizeName(t)
		resolved[t] = out.ips
		gave = gave || len(out.ips) > 0
		ttl = min(ttl, out.ttl)
		if out.vanished {
			for _, qtype := range qtypes {
				res.vanished = append(res.vanished, partFor(host, qtype))
			}
		}
		for _, qtype := range out.failed {
			res.failed = append(res.failed, partFor(host, qtype))
		}
		if out.err != nil {
			errs = append(errs, out.err)
		}
	}
	if !gave && len(errs) > 0 {
		return result{}, join(errs...)
	}
	var addrs []Address
	for _, rr := range ans.recs {
		srv := rr.(*dns.SRV)
		if !usable(srv) {
			continue
		}
		target := strings.ToLower(dns.Fqdn(srv.Target))
		ips := resolved[target]
		if len(addrs)+len(ips) > maxAddresses {
			return result{}, &QueryError{Name: srv.Hdr.Name, Type: "SRV", Server: ans.server,
				Err: fmt.Errorf("%w: more than %d addresses", ErrMalformed, maxAddresses)}
		}
		host := NormalizeName(target)
		for _, ip := range ips {
			addrs = append(addrs, Address{IP: ip, Port: srv.Port, Hostname: host, Weight: srv.Weight, Priority: srv.Priority})
		}
	}
	res.addrs = canonical(addrs)
	res.ttl = ttl
	res.err = join(errs...)
	return res, nil
}

// usable reports whether an SRV record names a place to connect to. The
// target "." means the service is decidedly not available there; port 0
// cannot be connected to. Neither contributes an address, nor a query.
func usable(srv *dns.SRV) bool {
	return srv.Target != "." && srv.Port != 0
}

// glueKey identifies the additional records of one family of a target.
type glueKey struct {
	target string // lower-case, fully qualified
	qtype  uint16 // dns.TypeA or dns.TypeAAAA
}

// targetOutcome is what the lookups of one SRV target gave.
type targetOutcome struct {
	ips      []netip.Addr
	ttl      uint32   // the smallest TTL of its answers; of its negative answers when it vanished; ^0 without either
	failed   []uint16 // the families to keep the last addresses of: those whose lookup failed, or all when the target gave none
	err      error    // why they failed
	vanished bool     // every family asked was negative: NXDOMAIN or NODATA
}

// target looks up an SRV target's addresses: for each of qtypes, those in
// glue or, when glue has none, those a query gives (the queries at the same
// time). The TTL covers the queries only (glue TTLs are counted by the
// caller). A family that is NXDOMAIN or NODATA next to addresses of the
// other contributes nothing, its negative TTL neither, as for a name of
// Type IP: only a target that vanished is asked again at its negative TTL.
func (l *lookup) target(ctx context.Context, p *plan, target string, qtypes []uint16, glue map[glueKey][]netip.Addr) targetOutcome {
	out := targetOutcome{ttl: ^uint32(0)}
	var need []uint16
	for _, qtype := range qtypes {
		if g, ok := glue[glueKey{target, qtype}]; ok {
			out.ips = append(out.ips, g...)
		} else {
			need = append(need, qtype)
		}
	}
	if len(need) == 0 {
		return out
	}
	var errs []error
	negTTL := ^uint32(0)
	for i, fo := range l.families(ctx, p, target, need) {
		switch {
		case fo.err == nil:
			out.ips = append(out.ips, fo.ips...)
			out.ttl = min(out.ttl, fo.ttl)
		case negative(fo.err):
			if fo.ttl > 0 {
				negTTL = min(negTTL, fo.ttl)
			}
		default:
			out.failed = append(out.failed, need[i])
			errs = append(errs, fo.err)
		}
	}
	out.err = join(errs...)
	switch {
	case len(out.ips) > 0:
	case len(errs) > 0:
		out.failed = qtypes // nothing is known of it: keep all it had
	default:
		out.vanished = true
		out.ttl = min(out.ttl, negTTL)
	}
	return out
}

// rrAddr returns the address of an A or AAAA record. It never has a zone:
// DNS cannot carry one.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	if rr.Header().Class != dns.ClassINET {
		return netip.Addr{}, false
	}
	switch r := rr.(type) {
	case *dns.A:
		return netip.AddrFromSlice(r.A.To4())
	case *dns.AAAA:
		if ip, ok := netip.AddrFromSlice(r.AAAA.To16()); ok && r.AAAA.To16() != nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
