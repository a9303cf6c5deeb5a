package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// lookup sends the queries of resolutions to the servers of a plan,
// failing over between them. It is safe for concurrent use: the A and AAAA
// queries of one name, and those of SRV targets, run at the same time.
type lookup struct {
	ex      exchanger
	observe func(Query) // if not nil, called after each query (see QueryTopic)

	turn atomic.Uint64 // queries sent with a rotating plan, for the server to ask first

	mu        sync.Mutex
	preferred string // the server that answered last; asked first by a plan that does not rotate
}

// plan is how one resolution asks: which servers, how many rounds over
// them, how long each attempt may take, and which names to try.
type plan struct {
	servers  []string      // "ip:port"; never empty
	attempts int           // rounds over servers; at least 1
	rotate   bool          // start each query at the next server in turn, rather than at the one that answered last
	timeout  time.Duration // per attempt
	names    []string      // the candidates for the configured name, fully qualified and lower case, in the order tried
}

// first returns the index in p.servers of the server a query asks first.
func (l *lookup) first(p *plan) int {
	n := len(p.servers)
	if p.rotate {
		return int((l.turn.Add(1) - 1) % uint64(n))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range p.servers {
		if s == l.preferred {
			return i
		}
	}
	return 0
}

// answered remembers that server gave a usable reply.
func (l *lookup) answered(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preferred = server
}

// query asks p's servers for name and qtype, p.attempts rounds over them,
// starting with the one first chooses. It fails over to the next server on
// any error but NXDOMAIN, which is authoritative. It returns the reply and
// the server that gave it; on ErrNXDomain the reply is returned along with
// the error.
func (l *lookup) query(ctx context.Context, p *plan, name string, qtype uint16) (*dns.Msg, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	typ := dns.TypeToString[qtype]
	if len(p.servers) == 0 { // not from NewSource, which always has one
		return nil, "", &QueryError{Name: name, Type: typ, Err: fmt.Errorf("%w: no server to ask", ErrNetwork)}
	}
	start, n := l.first(p), len(p.servers)
	var errs []error
	for range max(p.attempts, 1) {
		for i := range n {
			server := p.servers[(start+i)%n]
			m.Id = dns.Id()
			began := time.Now()
			r, err := l.ex.exchange(ctx, m, server, p.timeout)
			if err == nil {
				err = checkReply(m.Question[0], r)
			}
			if l.observe != nil && ctx.Err() == nil {
				l.observe(Query{QName: name, Type: typ, Server: server, Duration: time.Since(began), Err: err})
			}
			if err == nil || errors.Is(err, ErrNXDomain) {
				l.answered(server)
				if err != nil {
					err = &QueryError{Name: name, Type: typ, Server: server, Err: err}
				}
				return r, server, err
			}
			if ctx.Err() != nil {
				return nil, server, ctx.Err()
			}
			errs = append(errs, &QueryError{Name: name, Type: typ, Server: server, Err: err})
		}
	}
	return nil, "", errors.Join(errs...)
}

// answer is the records of one type that a name resolved to.
type answer struct {
	recs   []dns.RR // of the type asked, owned by the end of the CNAME chain
	extra  []dns.RR // the additional section of the reply that held recs
	ttl    uint32   // the smallest TTL on the chain; after a negative answer, the negative TTL
	server string   // the server that gave recs
}

// records resolves name to its records of qtype, following CNAMEs across
// replies when a server does not include the whole chain. A name without
// such records gives ErrNoData, a missing one ErrNXDomain; for both the
// answer's TTL is the negative TTL.
func (l *lookup) records(ctx context.Context, p *plan, name string, qtype uint16) (answer, error) {
	typ := dns.TypeToString[qtype]
	w := newChainWalk(name, qtype)
	var server string        // the last one that answered
	for range maxChain + 1 { // each round either returns or grows the chain
		asked := w.current()
		r, answered, err := l.query(ctx, p, asked, qtype)
		server = answered
		if err != nil {
			var ttl uint32
			if r != nil {
				ttl = negativeTTL(r)
			}
			return answer{ttl: ttl}, err
		}
		recs, grew, err := w.walk(r.Answer)
		if err != nil {
			return answer{}, &QueryError{Name: asked, Type: typ, Server: server, Err: err}
		}
		if len(recs) > 0 {
			return answer{recs: recs, extra: r.Extra, ttl: w.ttl, server: server}, nil
		}
		if !grew {
			return answer{ttl: negativeTTL(r)}, &QueryError{Name: w.current(), Type: typ, Server: server, Err: ErrNoData}
		}
	}
	return answer{}, &QueryError{Name: name, Type: typ, Server: server, Err: ErrCNAMEChain}
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
