package resolver

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Bounds on what a reply may make the resolver do.
const (
	maxChain   = 8    // CNAME links followed from the queried name
	maxRecords = 1024 // records in one reply, all sections together
	// maxAddresses bounds the addresses one resolution gives: SRV records
	// times their targets' addresses could otherwise turn a reply within
	// maxRecords into hundreds of thousands of targets.
	maxAddresses = maxRecords
)

// checkReply verifies that r answers q: it is a response to a standard
// query with the same question (name case-insensitively, type and class),
// within the size bounds. It maps the response code to a sentinel error;
// NXDOMAIN gives ErrNXDomain.
func checkReply(q dns.Question, r *dns.Msg) error {
	if !r.Response || r.Opcode != dns.OpcodeQuery {
		return fmt.Errorf("%w: not a response to a query", ErrMismatch)
	}
	if len(r.Question) != 1 {
		return fmt.Errorf("%w: %d questions in the reply", ErrMismatch, len(r.Question))
	}
	got := r.Question[0]
	if !strings.EqualFold(got.Name, q.Name) || got.Qtype != q.Qtype || got.Qclass != q.Qclass {
		return fmt.Errorf("%w: asked %s %s, reply is for %s %s", ErrMismatch,
			q.Name, dns.TypeToString[q.Qtype], got.Name, dns.TypeToString[got.Qtype])
	}
	if n := len(r.Answer) + len(r.Ns) + len(r.Extra); n > maxRecords {
		return fmt.Errorf("%w: %d records, more than %d", ErrMalformed, n, maxRecords)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNameError:
		return ErrNXDomain
	case dns.RcodeServerFailure:
		return ErrServerFailure
	case dns.RcodeRefused:
		return ErrRefused
	case dns.RcodeFormatError:
		return fmt.Errorf("%w: FORMERR", ErrMalformed)
	}
	return fmt.Errorf("%w: %s", ErrRcode, dns.RcodeToString[r.Rcode])
}

// chainWalk follows the CNAME chain that starts at the queried name through
// the answer records of one or more replies. Records whose owner is not on
// the chain are ignored.
type chainWalk struct {
	qtype uint16
	chain []string // lower-case names, starting with the queried one
	ttl   uint32   // smallest TTL seen on the chain
}

func newChainWalk(name string, qtype uint16) *chainWalk {
	return &chainWalk{qtype: qtype, chain: []string{strings.ToLower(dns.Fqdn(name))}, ttl: ^uint32(0)}
}

// current is the name at the end of the chain.
func (w *chainWalk) current() string { return w.chain[len(w.chain)-1] }

// walk consumes one reply's answer section. It returns the records of the
// queried type owned by the end of the chain (none if the chain ends in a
// name this reply has no records for) and whether the chain grew.
func (w *chainWalk) walk(answer []dns.RR) (recs []dns.RR, grew bool, err error) {
	for range maxChain + 1 { // each round follows one link or returns
		cur := w.current()
		var cname *dns.CNAME
		for _, rr := range answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			switch {
			case h.Rrtype == w.qtype:
				recs = append(recs, rr)
			case h.Rrtype == dns.TypeCNAME && cname == nil:
				cname = rr.(*dns.CNAME)
			}
		}
		if len(recs) > 0 {
			for _, rr := range recs {
				if !hasRData(rr) {
					return nil, grew, fmt.Errorf("%w: %s %s record without data",
						ErrMalformed, rr.Header().Name, dns.TypeToString[w.qtype])
				}
				w.ttl = min(w.ttl, rr.Header().Ttl)
			}
			return recs, grew, nil
		}
		if cname == nil {
			return nil, grew, nil
		}
		if err := w.link(cname); err != nil {
			return nil, grew, err
		}
		grew = true
	}
	return nil, grew, fmt.Errorf("%w: more than %d links", ErrCNAMEChain, maxChain)
}

// link appends the target of c to the chain.
func (w *chainWalk) link(c *dns.CNAME) error {
	if c.Target == "" { // no data: the root would be written "."
		return fmt.Errorf("%w: %s CNAME record without data", ErrMalformed, c.Hdr.Name)
	}
	target := strings.ToLower(dns.Fqdn(c.Target))
	for _, n := range w.chain {
		if n == target {
			return fmt.Errorf("%w: loop at %s", ErrCNAMEChain, target)
		}
	}
	if len(w.chain) > maxChain {
		return fmt.Errorf("%w: more than %d links", ErrCNAMEChain, maxChain)
	}
	w.chain = append(w.chain, target)
	w.ttl = min(w.ttl, c.Hdr.Ttl)
	return nil
}

// hasRData reports whether rr, a record of a type the resolver asks for,
// carries its data: an A or AAAA record its address, an SRV record its
// target. A record sent with an empty RDATA unpacks without them; it is
// malformed, not an answer without addresses.
func hasRData(rr dns.RR) bool {
	switch r := rr.(type) {
	case *dns.A, *dns.AAAA:
		_, ok := rrAddr(r)
		return ok
	case *dns.SRV:
		return r.Target != "" // the root, "not available", is "."
	}
	return true
}

// negativeTTL returns how long a negative answer may be cached: the smaller
// of the SOA record's TTL and its MINIMUM field, or 0 without an SOA.
func negativeTTL(r *dns.Msg) uint32 {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}
