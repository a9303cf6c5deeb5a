package dnstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxChain bounds how many CNAME links the server follows into an answer.
const maxChain = 16

// SOA parameters of the negative answers.
const negTTL = 1

// SRV is one SRV record to serve.
type SRV struct {
	Target   string // a domain name, or "." for "not available"
	Port     uint16
	Priority uint16
	Weight   uint16
	Glue     bool // include the target's A and AAAA records in the additional section
}

// Misbehavior replaces the server's normal reply. It receives the request,
// the reply the server would send and the network ("udp" or "tcp"); it
// returns true when it has written (or deliberately not written) the reply
// itself, false to let the server send reply as usual (possibly modified).
type Misbehavior func(w dns.ResponseWriter, req, reply *dns.Msg) (handled bool)

// Server is an authoritative DNS server on UDP and TCP, on one address.
type Server struct {
	udp, tcp *dns.Server
	addr     string
	queries  atomic.Int64
	tcpCount atomic.Int64
	tcpCut   atomic.Int64 // > 0: TCP replies stop after this many bytes

	mu     sync.Mutex
	rrs    map[string]map[uint16][]dns.RR // owner (lower-case, fully qualified) -> type -> records
	cnames map[string]*dns.CNAME
	rcodes map[string]int           // owner -> rcode of every query for it
	typed  map[string]int           // "owner type" -> rcode of the queries of that type
	delays map[string]time.Duration // owner -> wait before answering
	glue   map[string]bool          // SRV owner -> "target" -> include glue; key owner+" "+target
	misb   Misbehavior
	perQ   map[string]int64 // "name type" -> queries
}

// New returns a server that does not listen: its answers come from Reply
// only, with no network, for clients that run on the fake clock of
// testing/synctest (a goroutine waiting on a socket would stop that clock).
// Addr is empty and Close does nothing.
func New() *Server {
	return &Server{
		rrs:    make(map[string]map[uint16][]dns.RR),
		cnames: make(map[string]*dns.CNAME),
		rcodes: make(map[string]int),
		typed:  make(map[string]int),
		delays: make(map[string]time.Duration),
		glue:   make(map[string]bool),
		perQ:   make(map[string]int64),
	}
}

// Start serves on addr ("host:port") over UDP and TCP; an empty addr means
// 127.0.0.1 on a free port, the same for both.
func Start(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	pc, ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	s := New()
	s.addr = pc.LocalAddr().String()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: mux}
	s.tcp = &dns.Server{Listener: cutListener{Listener: ln, cut: &s.tcpCut}, Handler: mux}
	var started sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { _ = srv.ActivateAndServe() }()
	}
	started.Wait()
	return s, nil
}

// Reply returns the reply the server gives to req over TCP (whole, however
// long), and counts the query, as a query over the network would be
// counted. The Misbehavior, SetDelay and CutTCP do not apply: they act on
// the network exchange, and Reply has none.
func (s *Server) Reply(req *dns.Msg) *dns.Msg {
	s.queries.Add(1)
	reply, _, _ := s.answer(req)
	return reply
}

// listen opens UDP and TCP on the same address; with port 0 it retries
// until both get the same free port (bounded).
func listen(addr string) (net.PacketConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnstest: address %q: %w", addr, err)
	}
	var lastErr error
	for range 50 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		lastErr = err
		if ap.Port() != 0 {
			break
		}
	}
	return nil, nil, fmt.Errorf("dnstest: %w", lastErr)
}

// Addr returns the "ip:port" the server listens on (UDP and TCP); empty
// for a server made by New.
func (s *Server) Addr() string { return s.addr }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	if s.udp == nil { // New: nothing to stop
		return nil
	}
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// CutTCP makes every following TCP reply stop after its first n bytes (the
// two-byte length prefix included), and closes the connection there: the
// client reads a length prefix that promises more than ever arrives. n <= 0
// restores whole replies. Combine it with TruncateUDP to make a client
// meet it.
func (s *Server) CutTCP(n int) { s.tcpCut.Store(int64(max(n, 0))) }

// Queries returns how many queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// TCPQueries returns how many queries the server has received over TCP.
func (s *Server) TCPQueries() int64 { return s.tcpCount.Load() }

// QueriesFor returns how many queries for name and qtype (e.g. dns.TypeA)
// the server has received.
func (s *Server) QueriesFor(name string, qtype uint16) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perQ[qkey(canon(name), qtype)]
}

func qkey(name string, qtype uint16) string { return name + " " + dns.TypeToString[qtype] }

func canon(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetA replaces the A records of name; no ips removes them.
func (s *Server) SetA(name string, ttl uint32, ips ...string) error {
	return s.setAddrs(name, dns.TypeA, ttl, ips)
}

// SetAAAA replaces the AAAA records of name; no ips removes them.
func (s *Server) SetAAAA(name string, ttl uint32, ips ...string) error {
	return s.setAddrs(name, dns.TypeAAAA, ttl, ips)
}

func (s *Server) setAddrs(name string, qtype uint16, ttl uint32, ips []string) error {
	name = canon(name)
	rrs := make([]dns.RR, 0, len(ips))
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("dnstest: %w", err)
		}
		hdr := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
		switch {
		case qtype == dns.TypeA && a.Is4():
			rrs = append(rrs, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case qtype == dns.TypeAAAA && a.Is6():
			rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		default:
			return fmt.Errorf("dnstest: %s is not an address for a %s record", ip, dns.TypeToString[qtype])
		}
	}
	s.set(name, qtype, rrs)
	return nil
}

// SetSRV replaces the SRV records of name; no recs removes them.
func (s *Server) SetSRV(name string, ttl uint32, recs ...SRV) {
	name = canon(name)
	rrs := make([]dns.RR, 0, len(recs))
	s.mu.Lock()
	for k := range s.glue {
		if strings.HasPrefix(k, name+" ") {
			delete(s.glue, k)
		}
	}
	for _, r := range recs {
		target := canon(r.Target)
		rrs = append(rrs, &dns.SRV{
			Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
			Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target,
		})
		if r.Glue {
			s.glue[name+" "+target] = true
		}
	}
	s.mu.Unlock()
	s.set(name, dns.TypeSRV, rrs)
}

// SetCNAME makes name an alias of target; an empty target removes it.
func (s *Server) SetCNAME(name, target string, ttl uint32) {
	name = canon(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if target == "" {
		delete(s.cnames, name)
		return
	}
	s.cnames[name] = &dns.CNAME{
		Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: canon(target),
	}
}

// SetRcode makes every query for name answer with rcode (e.g.
// dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNameError) and no
// records; dns.RcodeSuccess restores normal answers.
func (s *Server) SetRcode(name string, rcode int) {
	name = canon(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.rcodes, name)
		return
	}
	s.rcodes[name] = rcode
}

// SetRcodeFor makes the queries for name of type qtype (e.g. dns.TypeAAAA)
// answer with rcode and no records, the other types normally:
// dns.RcodeSuccess restores normal answers. SetRcode takes precedence.
func (s *Server) SetRcodeFor(name string, qtype uint16, rcode int) {
	k := qkey(canon(name), qtype)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.typed, k)
		return
	}
	s.typed[k] = rcode
}

// SetDelay makes every query for name wait d before it is answered (or
// misbehaved on), over UDP and TCP; 0 restores prompt answers. The wait
// holds up Close for at most d.
func (s *Server) SetDelay(name string, d time.Duration) {
	name = canon(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delays, name)
		return
	}
	s.delays[name] = d
}

// Remove deletes every record of name, its CNAME and its rcodes.
func (s *Server) Remove(name string) {
	name = canon(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rrs, name)
	delete(s.cnames, name)
	delete(s.rcodes, name)
	for k := range s.typed {
		if strings.HasPrefix(k, name+" ") {
			delete(s.typed, k)
		}
	}
}

// SetMisbehavior installs m for every following query; nil restores normal
// behaviour.
func (s *Server) SetMisbehavior(m Misbehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.misb = m
}

func (s *Server) set(name string, qtype uint16, rrs []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rrs) == 0 {
		delete(s.rrs[name], qtype)
		if len(s.rrs[name]) == 0 {
			delete(s.rrs, name)
		}
		return
	}
	if s.rrs[name] == nil {
		s.rrs[name] = make(map[uint16][]dns.RR)
	}
	s.rrs[name][qtype] = rrs
}

// serve answers one query.
func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	tcp := w.LocalAddr().Network() == "tcp"
	if tcp {
		s.tcpCount.Add(1)
	}
	reply, misb, delay := s.answer(req)
	if delay > 0 {
		time.Sleep(delay)
	}
	if misb != nil && misb(w, req, reply) {
		return
	}
	if !tcp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(size, int(opt.UDPSize()))
		}
		reply.Truncate(size)
	}
	_ = w.WriteMsg(reply)
}

// answer builds the authoritative reply to req, and returns it with the
// misbehaviour installed and the delay set for the name asked.
func (s *Server) answer(req *dns.Msg) (*dns.Msg, Misbehavior, time.Duration) {
	reply := new(dns.Msg)
	reply.SetReply(req)
	reply.Authoritative = true
	if opt := req.IsEdns0(); opt != nil {
		reply.SetEdns0(opt.UDPSize(), false)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.Question) != 1 {
		reply.Rcode = dns.RcodeFormatError
		return reply, s.misb, 0
	}
	q := req.Question[0]
	name := canon(q.Name)
	s.perQ[qkey(name, q.Qtype)]++
	delay := s.delays[name]
	if rc, ok := s.rcodes[name]; ok {
		reply.Rcode = rc
		return reply, s.misb, delay
	}
	if rc, ok := s.typed[qkey(name, q.Qtype)]; ok {
		reply.Rcode = rc
		return reply, s.misb, delay
	}
	cur := name
	for range maxChain {
		c := s.cnames[cur]
		if c == nil || q.Qtype == dns.TypeCNAME {
			break
		}
		reply.Answer = append(reply.Answer, dns.Copy(c))
		cur = c.Target
	}
	if rc, ok := s.rcodes[cur]; ok {
		reply.Rcode = rc
		return reply, s.misb, delay
	}
	glued := make(map[string]bool) // targets whose glue is in the reply
	for _, rr := range s.rrs[cur][q.Qtype] {
		reply.Answer = append(reply.Answer, dns.Copy(rr))
		if srv, ok := rr.(*dns.SRV); ok && s.glue[cur+" "+srv.Target] && !glued[srv.Target] {
			glued[srv.Target] = true
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
				for _, g := range s.rrs[srv.Target][t] {
					reply.Extra = append(reply.Extra, dns.Copy(g))
				}
			}
		}
	}
	if len(s.rrs[cur][q.Qtype]) == 0 && s.cnames[cur] == nil {
		if s.rrs[cur] == nil {
			reply.Rcode = dns.RcodeNameError
		}
		reply.Ns = append(reply.Ns, soa(cur))
	}
	return reply, s.misb, delay
}

// soa returns the SOA record sent with negative answers.
func soa(name string) dns.RR {
	zone := "."
	if labels := dns.SplitDomainName(name); len(labels) > 1 {
		zone = dns.Fqdn(strings.Join(labels[1:], "."))
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: negTTL},
		Ns:      "ns." + strings.TrimPrefix(zone, "."),
		Mbox:    "hostmaster." + strings.TrimPrefix(zone, "."),
		Serial:  uint32(time.Now().Unix()),
		Refresh: 60, Retry: 60, Expire: 60, Minttl: negTTL,
	}
}

// cutListener hands out connections whose writes CutTCP can cut short.
type cutListener struct {
	net.Listener
	cut *atomic.Int64
}

func (l cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, cut: l.cut}, nil
}

// cutConn writes at most cut bytes of a reply, then closes.
type cutConn struct {
	net.Conn
	cut *atomic.Int64
}

func (c *cutConn) Write(p []byte) (int, error) {
	n := c.cut.Load()
	if n <= 0 || int64(len(p)) <= n {
		return c.Conn.Write(p)
	}
	w, _ := c.Conn.Write(p[:n])
	_ = c.Conn.Close()
	return w, io.ErrShortWrite
}
