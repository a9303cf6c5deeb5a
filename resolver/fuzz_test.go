package resolver

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// replayExchanger answers every query with the same reply bytes, unpacked
// afresh each time as a client would. With patch set, the reply's question
// is replaced by the one asked, so that the answer sections are examined
// even when the bytes were not made for this question.
type replayExchanger struct {
	reply []byte
	patch bool
	calls atomic.Int64 // the lookups of one resolution run at the same time
}

func (x *replayExchanger) exchange(_ context.Context, m *dns.Msg, _ string, _ time.Duration) (*dns.Msg, error) {
	x.calls.Add(1)
	r := new(dns.Msg)
	if err := r.Unpack(x.reply); err != nil {
		return nil, wrap(ErrMalformed, err)
	}
	r.Id = m.Id // the client drops replies with another ID
	if x.patch {
		r.Question = []dns.Question{m.Question[0]}
	}
	return r, nil
}

// maxExchanges bounds the queries of one resolution: a chain of queries for
// the name, then for each SRV target (at most one per record) two chains
// (A and AAAA).
const maxExchanges = (maxChain + 1) * (1 + 2*maxRecords)

// sentinels are the errors every resolution failure must match one of.
var sentinels = []error{
	ErrTimeout, ErrServerFailure, ErrRefused, ErrRcode, ErrNXDomain, ErrNoData,
	ErrMalformed, ErrMismatch, ErrCNAMEChain, ErrNetwork,
}

// FuzzReply feeds arbitrary bytes as the server's reply into the answer
// handling: unpacking, checkReply, the CNAME chain walk, address extraction
// and SRV target resolution, for A, AAAA and SRV questions.
func FuzzReply(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, reply []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(reply) != nil {
			msg = nil
		}
		for _, cfg := range []Config{
			{Name: "web.test", Type: A, Port: 80},
			{Name: "web.test", Type: AAAA, Port: 443},
			{Name: "_http._tcp.web.test", Type: SRV},
			{Name: "Web.Test", Type: IP, Port: 80},
		} {
			for _, patch := range []bool{false, true} {
				x := &replayExchanger{reply: reply, patch: patch}
				l := &lookup{ex: x}
				p := &plan{servers: []string{"192.0.2.1:53"}, attempts: 1, timeout: time.Second, names: []string{strings.ToLower(dns.Fqdn(cfg.Name))}}
				res, err := l.resolve(context.Background(), p, cfg, "")
				if n := x.calls.Load(); n > maxExchanges {
					t.Fatalf("%s: %d queries for one resolution, more than %d", cfg.Type, n, maxExchanges)
				}
				if err != nil {
					if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
						t.Fatalf("%s: error %v matches no sentinel", cfg.Type, err)
					}
					if len(res.addrs) != 0 {
						t.Fatalf("%s: addresses %v along with error %v", cfg.Type, res.addrs, err)
					}
					continue
				}
				if msg == nil {
					t.Fatalf("%s: resolved %v from a reply that does not unpack", cfg.Type, res.addrs)
				}
				checkResolved(t, cfg, msg, res)
			}
		}
	})
}

// checkResolved checks res, resolved from replies that are all msg, against
// a model of what msg allows.
func checkResolved(t *testing.T, cfg Config, msg *dns.Msg, res result) {
	t.Helper()
	if n := len(res.addrs); n > maxAddresses {
		t.Fatalf("%s: %d addresses, more than %d", cfg.Type, n, maxAddresses)
	}
	for i := 1; i < len(res.addrs); i++ {
		if Compare(res.addrs[i-1], res.addrs[i]) >= 0 {
			t.Fatalf("%s: addresses not in canonical order or repeated: %v", cfg.Type, res.addrs)
		}
	}
	var maxTTL uint32
	for _, rr := range append(append([]dns.RR(nil), msg.Answer...), msg.Extra...) {
		maxTTL = max(maxTTL, rr.Header().Ttl)
	}
	if len(res.addrs) > 0 && res.ttl > maxTTL {
		t.Fatalf("%s: TTL %d, above every record's (%d)", cfg.Type, res.ttl, maxTTL)
	}
	for _, a := range res.addrs {
		if a.IP.Zone() != "" {
			t.Fatalf("%s: %v has a zone, which DNS cannot carry", cfg.Type, a)
		}
	}
	onChain := reachable(msg.Answer, dns.Fqdn(cfg.Name))
	if cfg.Type != SRV {
		qtypes := map[uint16]bool{dns.TypeA: true, dns.TypeAAAA: true} // A and IP
		if cfg.Type == AAAA {
			qtypes = map[uint16]bool{dns.TypeAAAA: true}
		}
		allowed := make(map[netip.Addr]uint16) // the type of the record it is in
		for _, rr := range msg.Answer {
			h := rr.Header()
			if h.Class == dns.ClassINET && qtypes[h.Rrtype] && onChain[strings.ToLower(h.Name)] {
				if ip, ok := rrAddr(rr); ok {
					allowed[ip] = h.Rrtype
				}
			}
		}
		for _, a := range res.addrs {
			switch rrtype, ok := allowed[a.IP]; {
			case !ok:
				t.Fatalf("%s: %v is in no %s record on the chain of %s", cfg.Type, a, cfg.Type, cfg.Name)
			case a.Hostname != NormalizeName(cfg.Name) || a.Port != cfg.Port || a.Weight != 0 || a.Priority != 0:
				t.Fatalf("%s: %+v does not carry the configured name, normalized, and port", cfg.Type, a)
			case rrtype == dns.TypeA && !a.IP.Is4(), rrtype == dns.TypeAAAA && !a.IP.Is6():
				t.Fatalf("%s: %v is of the wrong family", cfg.Type, a)
			}
		}
		return
	}
	type srvKey struct {
		host                   string
		port, weight, priority uint16
	}
	srvs := make(map[srvKey]bool)
	for _, rr := range msg.Answer {
		if s, ok := rr.(*dns.SRV); ok && s.Hdr.Class == dns.ClassINET && onChain[strings.ToLower(s.Hdr.Name)] {
			host := strings.TrimSuffix(strings.ToLower(dns.Fqdn(s.Target)), ".")
			srvs[srvKey{host, s.Port, s.Weight, s.Priority}] = true
		}
	}
	ipsIn := make(map[netip.Addr]bool)
	for _, rr := range append(append([]dns.RR(nil), msg.Answer...), msg.Extra...) {
		if ip, ok := rrAddr(rr); ok {
			ipsIn[ip] = true
		}
	}
	for _, a := range res.addrs {
		if !srvs[srvKey{a.Hostname, a.Port, a.Weight, a.Priority}] {
			t.Fatalf("SRV: %+v matches no SRV record on the chain", a)
		}
		if !ipsIn[a.IP] || a.Hostname == "" {
			t.Fatalf("SRV: %+v has an address found in no record", a)
		}
	}
}

// reachable returns the lower-case names reachable from name through the
// CNAME records of answer, name included.
func reachable(answer []dns.RR, name string) map[string]bool {
	seen := map[string]bool{strings.ToLower(name): true}
	for range len(answer) + 1 { // each round adds a name or stops
		grew := false
		for _, rr := range answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || c.Hdr.Class != dns.ClassINET || !seen[strings.ToLower(c.Hdr.Name)] {
				continue
			}
			if target := strings.ToLower(dns.Fqdn(c.Target)); !seen[target] {
				seen[target] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	return seen
}

// FuzzConfig feeds arbitrary configurations to NewSource: each is either
// accepted, with every field within its documented range, or rejected with a
// *ConfigError; never a panic.
func FuzzConfig(f *testing.F) {
	f.Add("web.test", 0, uint16(80), "127.0.0.1:53", int64(0), int64(0), int64(0), int64(0), int64(0), 0, int64(0), int64(0), 0.0)
	f.Add("_http._tcp.svc.test.", 2, uint16(0), "[::1]:5353,10.0.0.1", int64(time.Millisecond), int64(time.Second), int64(time.Second), int64(time.Second), int64(time.Second), 1, int64(time.Millisecond), int64(time.Second), 0.5)
	f.Add(" bad name", 1, uint16(1), "", int64(-1), int64(1), int64(1), int64(1), int64(-1), 2, int64(-1), int64(0), -1.0)
	f.Add("web.test", 3, uint16(80), "[fe80::1%eth0]:53,:53", int64(2), int64(1), int64(0), int64(0), int64(0), 3, int64(time.Hour), int64(0), 1.0)
	f.Fuzz(func(t *testing.T, name string, typ int, port uint16, servers string,
		minTTL, maxTTL, timeout, nxHold, holdObsolete int64, family int, backoffInitial, backoffMax int64, jitter float64) {
		cfg := Config{
			Name: name, Type: RecordType(typ), Port: port,
			MinTTL: time.Duration(minTTL), MaxTTL: time.Duration(maxTTL), Timeout: time.Duration(timeout),
			NXDomainHold: time.Duration(nxHold), HoldObsolete: time.Duration(holdObsolete), Family: Family(family),
			Backoff: Backoff{Initial: time.Duration(backoffInitial), Max: time.Duration(backoffMax), Jitter: jitter},
		}
		if servers != "" {
			cfg.Servers = strings.Split(servers, ",")
		}
		s, err := NewSource(cfg, nil, WithResolvConf("testdata/no-such-resolv.conf"))
		if err != nil {
			var ce *ConfigError
			if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field == "" || s != nil {
				t.Fatalf("NewSource(%+v) = %v, %v; want a *ConfigError", cfg, s, err)
			}
			return
		}
		c := s.cfg
		b := c.Backoff
		switch {
		case c.Name == "" || strings.TrimSpace(c.Name) != c.Name:
			t.Fatalf("accepted name %q", c.Name)
		case c.Type != AAAA && c.Type != SRV && c.Type != IP: // A means IP
			t.Fatalf("accepted type %v", c.Type)
		case c.Type != SRV && c.Port == 0:
			t.Fatalf("accepted port 0 for %v", c.Type)
		case c.Family != DualStack && c.Family != IPv4Only && c.Family != IPv6Only,
			c.Type == AAAA && c.Family == IPv4Only:
			t.Fatalf("accepted family %v for %v", c.Family, c.Type)
		case c.MinTTL <= 0 || c.MaxTTL < c.MinTTL || c.Timeout <= 0 || c.NXDomainHold <= 0 || c.HoldObsolete < 0:
			t.Fatalf("accepted durations %+v", c)
		case b.Initial <= 0 || b.Max < b.Initial || math.IsNaN(b.Jitter) || b.Jitter >= 1 || b.Jitter == 0:
			t.Fatalf("accepted backoff %+v", b)
		case len(s.plan().servers) == 0:
			t.Fatal("no server")
		}
		for _, srv := range s.plan().servers {
			if ap, err := netip.ParseAddrPort(srv); err != nil || ap.Port() == 0 {
				t.Fatalf("server %q is not ip:port (%v)", srv, err)
			}
		}
		// Every accepted name makes a query that can be sent.
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(c.Name), dns.TypeA)
		if _, err := m.Pack(); err != nil {
			t.Fatalf("accepted name %q cannot be sent: %v", c.Name, err)
		}
		if d := refreshDelay(time.Duration(1<<31-1)*time.Second, c.MinTTL, c.MaxTTL); d < 0 || d > c.MaxTTL {
			t.Fatalf("refresh delay %v outside [0, %v]", d, c.MaxTTL)
		}
		for n := 1; n <= maxFailures; n *= 2 {
			if d := b.delay(n); d <= 0 || b.Jitter < 0 && d > b.Max {
				t.Fatalf("backoff delay(%d) = %v for %+v", n, d, b)
			}
		}
	})
}
