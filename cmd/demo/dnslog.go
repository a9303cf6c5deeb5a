package main

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/vigil-go/vigil/resolver"
)

// answerLog records when the story's DNS server began answering each name
// with each set of addresses: the moment a set appeared in DNS as the
// Source saw it, a little before the Source published it as a Change. The
// observer times Changes from here rather than from when its own
// subscription received them, which may be later than the checker's.
type answerLog struct {
	mu    sync.Mutex
	names map[string][]answered // oldest first; grows only when the records change
}

// answered is a set of addresses and when the server first gave it.
type answered struct {
	set string
	at  time.Time
}

func newAnswerLog() *answerLog { return &answerLog{names: map[string][]answered{}} }

// record is a dnstest.Misbehavior that changes nothing: it notes the A and
// AAAA addresses of a reply and lets the server send it as usual.
func (l *answerLog) record(_ dns.ResponseWriter, _, reply *dns.Msg) bool {
	if len(reply.Question) != 1 {
		return false
	}
	q := reply.Question[0]
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA {
		return false
	}
	var ips []netip.Addr
	for _, rr := range reply.Answer {
		var ip netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(r.A)
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(r.AAAA)
		}
		if ip.IsValid() {
			ips = append(ips, ip.Unmap())
		}
	}
	name, set, now := canonName(q.Name), setKey(ips), time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.names[name]; len(h) == 0 || h[len(h)-1].set != set {
		l.names[name] = append(h, answered{set, now})
	}
	return false
}

// since returns when the server last began answering name with the IPs of
// addrs, and whether it ever did.
func (l *answerLog) since(name string, addrs []resolver.Address) (time.Time, bool) {
	ips := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	set := setKey(ips)
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.names[canonName(name)]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].set == set {
			return h[i].at, true
		}
	}
	return time.Time{}, false
}

// canonName is name in lower case without the final dot.
func canonName(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// setKey names a set of IPs whatever their order.
func setKey(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}
