package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// lookup resolves names against a list of servers, failing over between
// them. It is used by one goroutine at a time (the Source's Run).
type lookup struct {
	ex      exchanger
	servers []string
	next    int         // index of the server to ask first: the last one that answered
	observe func(Query) // if not nil, called after each query (see QueryTopic)
}

// result is the outcome of resolving the configured name.
type result struct {
	addrs []Address
	ttl   uint32 // smallest TTL involved; for negative answers the negative TTL
	// vanished holds the SRV targets (host names, as in Address.Hostname)
	// for which both the A and the AAAA lookup were negative (NXDOMAIN or
	// NODATA): they contribute no address to addrs.
	vanished []string
}

// query asks the servers, starting with the last one that answered, for
// name and qtype. It fails over to the next server on any error but
// NXDOMAIN, which is authoritative. On ErrNXDomain the reply is returned
// along with the error.
func (l *lookup) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	var errs []error
	for i := range l.servers {
		idx := (l.next + i) % len(l.servers)
		server := l.servers[idx]
		m.Id = dns.Id()
		began := time.Now()
		r, err := l.ex.exchange(ctx, m, server)
		if err == nil {
			err = checkReply(m.Question[0], r)
		}
		if l.observe != nil && ctx.Err() == nil {
			l.observe(Query{QName: name, Type: dns.TypeToString[qtype], Server: server, Duration: time.Since(began), Err: err})
		}
		if err == nil || errors.Is(err, ErrNXDomain) {
			l.next = idx
			if err != nil {
				err = &QueryError{Name: name, Type: dns.TypeToString[qtype], Server: server, Err: err}
			}
			return r, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, &QueryError{Name: name, Type: dns.TypeToString[qtype], Server: server, Err: err})
	}
	return nil, errors.Join(errs...)
}

// records resolves name to its records of qtype, following CNAMEs across
// replies when a server does not include the whole chain. It returns the
// records and the smallest TTL on the chain. A name without such records
// gives ErrNoData, a missing one ErrNXDomain; for both the returned TTL is
// the negative TTL.
func (l *lookup) records(ctx context.Context, name string, qtype uint16) ([]dns.RR, []dns.RR, uint32, error) {
	w := newChainWalk(name, qtype)
	for range maxChain + 1 { // each round either returns or grows the chain
		asked := w.current()
		r, err := l.query(ctx, asked, qtype)
		if err != nil {
			var ttl uint32
			if r != nil {
				ttl = negativeTTL(r)
			}
			return nil, nil, ttl, err
		}
		recs, grew, err := w.walk(r.Answer)
		if err != nil {
			return nil, nil, 0, &QueryError{Name: asked, Type: dns.TypeToString[qtype], Server: l.servers[l.next], Err: err}
		}
		if len(recs) > 0 {
			return recs, r.Extra, w.ttl, nil
		}
		if !grew {
			return nil, nil, negativeTTL(r), &QueryError{
				Name: w.current(), Type: dns.TypeToString[qtype], Server: l.servers[l.next], Err: ErrNoData,
			}
		}
	}
	return nil, nil, 0, &QueryError{Name: name, Type: dns.TypeToString[qtype], Server: l.servers[l.next], Err: ErrCNAMEChain}
}

// resolve resolves the configured name to its address set.
func (l *lookup) resolve(ctx context.Context, cfg Config) (result, error) {
	if cfg.Type == IP {
		return l.resolveIP(ctx, cfg)
	}
	qtype := cfg.Type.qtype()
	recs, extra, ttl, err := l.records(ctx, dns.Fqdn(cfg.Name), qtype)
	if err != nil {
		return result{ttl: ttl}, err
	}
	if cfg.Type != SRV {
		host := strings.TrimSuffix(cfg.Name, ".")
		addrs := make([]Address, 0, len(recs))
		for _, rr := range recs {
			if ip, ok := rrAddr(rr); ok {
				addrs = append(addrs, Address{IP: ip, Port: cfg.Port, Hostname: host})
			}
		}
		return result{addrs: canonical(addrs), ttl: ttl}, nil
	}
	return l.resolveSRV(ctx, recs, extra, ttl)
}

// resolveSRV turns SRV records into addresses. A target's addresses of
// each family (IPv4, IPv6) come from the additional section (extra) or,
// when it holds none of that family for the target, from a follow-up A or
// AAAA query: at most two per distinct target, and the targets are bounded
// by the maxRecords records of the SRV reply. Glue may be partial (A
// records without the AAAA ones, say); the set does not depend on it.
// Additional records of names that are not targets are ignored.
func (l *lookup) resolveSRV(ctx context.Context, recs, extra []dns.RR, ttl uint32) (result, error) {
	targets := make(map[string]bool, len(recs))
	for _, rr := range recs {
		if usable(rr.(*dns.SRV)) {
			targets[strings.ToLower(dns.Fqdn(rr.(*dns.SRV).Target))] = true
		}
	}
	glue := make(map[glueKey][]netip.Addr)
	for _, rr := range extra {
		h := rr.Header()
		owner := strings.ToLower(h.Name)
		if h.Class != dns.ClassINET || h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA || !targets[owner] {
			continue
		}
		ip, ok := rrAddr(rr)
		if !ok {
			return result{}, &QueryError{Name: owner, Type: dns.TypeToString[h.Rrtype], Server: l.servers[l.next],
				Err: fmt.Errorf("%w: additional %s record without data", ErrMalformed, dns.TypeToString[h.Rrtype])}
		}
		k := glueKey{owner, h.Rrtype}
		glue[k] = append(glue[k], ip)
		ttl = min(ttl, h.Ttl)
	}
	resolved := make(map[string][]netip.Addr) // per target: glue and follow-up addresses
	var addrs []Address
	var vanished []string
	for _, rr := range recs {
		srv := rr.(*dns.SRV)
		if !usable(srv) {
			continue
		}
		target := strings.ToLower(dns.Fqdn(srv.Target))
		ips, ok := resolved[target]
		if !ok {
			var t uint32
			var err error
			ips, t, err = l.targetAddrs(ctx, target, glue)
			if err != nil {
				return result{}, err
			}
			resolved[target] = ips
			ttl = min(ttl, t)
			if len(ips) == 0 {
				vanished = append(vanished, strings.TrimSuffix(target, "."))
			}
		}
		host := strings.TrimSuffix(target, ".")
		if len(addrs)+len(ips) > maxAddresses {
			return result{}, &QueryError{Name: srv.Hdr.Name, Type: "SRV", Server: l.servers[l.next],
				Err: fmt.Errorf("%w: more than %d addresses", ErrMalformed, maxAddresses)}
		}
		for _, ip := range ips {
			addrs = append(addrs, Address{IP: ip, Port: srv.Port, Hostname: host, Weight: srv.Weight, Priority: srv.Priority})
		}
	}
	return result{addrs: canonical(addrs), ttl: ttl, vanished: vanished}, nil
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

// targetAddrs returns an SRV target's IPv4 and IPv6 addresses: for each
// family, those in glue or, when glue has none, those a query gives. The
// TTL returned covers the queries only (glue TTLs are counted by the
// caller). A family the target has no records of contributes nothing; any
// other error fails the whole resolution, so that a flaky lookup never
// drops a target.
func (l *lookup) targetAddrs(ctx context.Context, target string, glue map[glueKey][]netip.Addr) ([]netip.Addr, uint32, error) {
	var ips []netip.Addr
	ttl := ^uint32(0)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if g, ok := glue[glueKey{target, qtype}]; ok {
			ips = append(ips, g...)
			continue
		}
		recs, _, t, err := l.records(ctx, target, qtype)
		switch {
		case errors.Is(err, ErrNXDomain), errors.Is(err, ErrNoData):
			if t > 0 {
				ttl = min(ttl, t)
			}
			continue
		case err != nil:
			return nil, 0, err
		}
		ttl = min(ttl, t)
		for _, rr := range recs {
			if ip, ok := rrAddr(rr); ok {
				ips = append(ips, ip)
			}
		}
	}
	return ips, ttl, nil
}

// rrAddr returns the address of an A or AAAA record.
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

// canonical sorts addrs and drops duplicate targets (same IP, port and
// hostname), keeping the first in canonical order.
func canonical(addrs []Address) []Address {
	Sort(addrs)
	out := addrs[:0]
	for _, a := range addrs {
		if n := len(out); n > 0 && out[n-1].Key() == a.Key() {
			continue
		}
		out = append(out, a)
	}
	return out
}

// resolveIP resolves the A and the AAAA records of the configured name as
// one set. NODATA or NXDOMAIN for one family is not a failure when the other
// has addresses.
func (l *lookup) resolveIP(ctx context.Context, cfg Config) (result, error) {
	var out result
	out.ttl = ^uint32(0)
	var errs []error
	for _, t := range []RecordType{A, AAAA} {
		c := cfg
		c.Type = t
		r, err := l.resolve(ctx, c)
		if err != nil {
			errs = append(errs, err)
			if r.ttl > 0 {
				out.ttl = min(out.ttl, r.ttl)
			}
			continue
		}
		out.addrs = append(out.addrs, r.addrs...)
		out.ttl = min(out.ttl, r.ttl)
	}
	if len(out.addrs) > 0 {
		out.addrs = canonical(out.addrs)
		return out, nil
	}
	if out.ttl == ^uint32(0) {
		out.ttl = 0
	}
	for _, err := range errs {
		if !errors.Is(err, ErrNXDomain) && !errors.Is(err, ErrNoData) {
			return out, err
		}
	}
	return out, errs[0]
}
