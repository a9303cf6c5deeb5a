package dnstest

import (
	"time"

	"github.com/miekg/dns"
)

// Drop never answers, so the client times out.
func Drop(dns.ResponseWriter, *dns.Msg, *dns.Msg) bool { return true }

// Garbage answers with bytes that are not a DNS message.
func Garbage(w dns.ResponseWriter, req, _ *dns.Msg) bool {
	// The ID matches, so a client reads past the header and fails to unpack.
	_, _ = w.Write([]byte{byte(req.Id >> 8), byte(req.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff})
	return true
}

// WrongID answers with a reply whose ID differs from the query's.
func WrongID(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	reply.Id++
	_ = w.WriteMsg(reply)
	return true
}

// WrongIDFirst sends a reply with a wrong ID, then the right reply, like an
// off-path attacker racing the server.
func WrongIDFirst(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	bad := reply.Copy()
	bad.Id++
	bad.Answer = nil
	_ = w.WriteMsg(bad)
	_ = w.WriteMsg(reply)
	return true
}

// WrongQuestion answers with the right ID but a reply for another name.
func WrongQuestion(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	if len(reply.Question) == 1 {
		reply.Question[0].Name = "other.invalid."
		for _, rr := range reply.Answer {
			rr.Header().Name = "other.invalid."
		}
	}
	_ = w.WriteMsg(reply)
	return true
}

// TruncateUDP answers every UDP query with an empty, truncated reply, so
// the client must retry over TCP; TCP queries are answered normally.
func TruncateUDP(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	if w.LocalAddr().Network() == "tcp" {
		return false
	}
	reply.Truncated = true
	reply.Answer, reply.Ns, reply.Extra = nil, nil, nil
	_ = w.WriteMsg(reply)
	return true
}

// CloseTCP answers every UDP query with an empty, truncated reply, so the
// client retries over TCP, and closes every TCP connection without
// answering.
func CloseTCP(w dns.ResponseWriter, req, reply *dns.Msg) bool {
	if w.LocalAddr().Network() == "tcp" {
		_ = w.Close()
		return true
	}
	return TruncateUDP(w, req, reply)
}

// Empty answers NOERROR with nothing at all: no answer, no authority (so no
// negative TTL), no additional records.
func Empty(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	reply.Rcode = dns.RcodeSuccess
	reply.Answer, reply.Ns, reply.Extra = nil, nil, nil
	_ = w.WriteMsg(reply)
	return true
}

// Slow returns a Misbehavior that waits d before sending the normal reply,
// so that a client with a shorter timeout gives up first. The wait holds up
// Close for at most d.
func Slow(d time.Duration) Misbehavior {
	return func(dns.ResponseWriter, *dns.Msg, *dns.Msg) bool {
		time.Sleep(d)
		return false
	}
}

// Add returns a Misbehavior that appends rrs to the answer section of the
// normal reply, e.g. records owned by unrelated names.
func Add(rrs ...dns.RR) Misbehavior {
	return func(_ dns.ResponseWriter, _, reply *dns.Msg) bool {
		for _, rr := range rrs {
			reply.Answer = append(reply.Answer, dns.Copy(rr))
		}
		return false
	}
}

// CutShort returns a Misbehavior that sends only the first n bytes of the
// packed reply: a datagram cut short over UDP, a complete frame holding an
// incomplete message over TCP.
func CutShort(n int) Misbehavior {
	return func(w dns.ResponseWriter, _, reply *dns.Msg) bool {
		b, err := reply.Pack()
		if err != nil {
			return false
		}
		_, _ = w.Write(b[:min(max(n, 0), len(b))])
		return true
	}
}

// Answer returns a Misbehavior that replaces the answer section of the
// normal reply with rrs, e.g. a CNAME loop, in one step.
func Answer(rrs ...dns.RR) Misbehavior {
	return func(_ dns.ResponseWriter, _, reply *dns.Msg) bool {
		reply.Answer = reply.Answer[:0]
		for _, rr := range rrs {
			reply.Answer = append(reply.Answer, dns.Copy(rr))
		}
		return false
	}
}

// NoEDNS plays a server that does not speak EDNS0: a query with an OPT
// record gets FORMERR without one (RFC 6891, section 7); a query without is
// answered normally, within 512 bytes over UDP.
func NoEDNS(w dns.ResponseWriter, req, reply *dns.Msg) bool {
	if req.IsEdns0() == nil {
		return false
	}
	r := new(dns.Msg)
	r.SetRcode(req, dns.RcodeFormatError)
	_ = w.WriteMsg(r)
	return true
}

// TruncateMidRecord returns a Misbehavior that answers UDP queries with the
// first n bytes of the packed reply and the TC bit set, the way some
// servers cut a reply that does not fit: the message ends in the middle of
// a record and does not unpack. TCP queries are answered normally.
func TruncateMidRecord(n int) Misbehavior {
	return func(w dns.ResponseWriter, _, reply *dns.Msg) bool {
		if w.LocalAddr().Network() == "tcp" {
			return false
		}
		b, err := reply.Pack()
		if err != nil || len(b) < 12 {
			return false
		}
		b[2] |= 0x02 // TC
		_, _ = w.Write(b[:min(max(n, 12), len(b)-1)])
		return true
	}
}

// IgnoreUDPSize answers UDP queries with the whole reply however long it
// is, as a server that ignores the UDP size the client advertised (512
// bytes, or EDNS0's): the client reads at most its buffer of it. TCP
// queries are answered normally.
func IgnoreUDPSize(w dns.ResponseWriter, _, reply *dns.Msg) bool {
	if w.LocalAddr().Network() == "tcp" {
		return false
	}
	b, err := reply.Pack()
	if err != nil {
		return false
	}
	_, _ = w.Write(b)
	return true
}

// ForQuestion returns a Misbehavior that applies m to the queries for name
// and qtype only, and answers the others normally.
func ForQuestion(name string, qtype uint16, m Misbehavior) Misbehavior {
	name = canon(name)
	return func(w dns.ResponseWriter, req, reply *dns.Msg) bool {
		if len(req.Question) != 1 || canon(req.Question[0].Name) != name || req.Question[0].Qtype != qtype {
			return false
		}
		return m(w, req, reply)
	}
}
