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
