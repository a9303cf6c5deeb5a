package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/resolver"
)

// observer watches one world from the outside: the Changes its resolver
// publishes, the targets its checker holds (polled), and the backends'
// own counts. Everything the summary reports comes from here and from the
// traffic generator, not from the checker's own counters.
type observer struct {
	w       *world
	clock   clock
	poll    time.Duration
	grace   time.Duration // after a removal appears, what is still in flight lands within this
	allow   time.Duration // scale.checkAllowance
	answers *answerLog    // when DNS began answering each set; nil: unknown

	mu        sync.Mutex
	changes   []published                     // every Change, in order
	addrs     map[netip.Addr]resolver.Address // every address seen
	inDNS     map[netip.Addr]bool             // in the latest Change
	applied   map[netip.Addr]bool             // in the Change the checker applied last
	appliedV  uint64
	awaiting  map[netip.Addr]newcomer // added, first probe not seen yet
	last      map[netip.Addr]health.Status
	fail      map[netip.Addr]*failure  // backends failing now, wholly or their health check alone
	failures  []*failure               // every failure, in order
	left      map[netip.Addr]time.Time // left the checker's targets then, not back
	gone      map[netip.Addr]*removal  // not in the latest published set, not put back
	removals  []*removal               // every removal from DNS, in order
	stale     map[netip.Addr]int       // probes counted after removal, per address
	resets    int
	firstSeen map[netip.Addr]time.Duration // latency of each first probe
	back      map[netip.Addr]health.Status // status at the first look after (re)newcomer
}

// published is a Change and when it appeared: when the DNS server began
// answering with its set, just before the Source published it (or, where
// that is unknown, when the observer received it).
type published struct {
	resolver.Change
	at time.Time
}

// newcomer is an address that joined the targets and awaits its first probe.
type newcomer struct {
	published time.Time // when the Change adding it appeared
	after     time.Time // a probe that started after this is a new one
}

// failure is one period in which a backend answers 500: to every request,
// or (checkOnly) to its probes alone while its traffic still succeeds.
type failure struct {
	ip        netip.Addr
	checkOnly bool
	start     time.Time
	detected  time.Time // when the checker was first seen to hold it unhealthy
	end       time.Time // zero while it lasts
}

// countsFrom returns when requests to f's backend begin to count as sent
// to a backend known to fail: at its detection or, when it was never
// detected, allow after it began.
func (f *failure) countsFrom(allow time.Duration) time.Time {
	if !f.detected.IsZero() {
		return f.detected
	}
	return f.start.Add(allow)
}

// what names what fails in f, for the narration.
func (f *failure) what() string {
	if f.checkOnly {
		return "its health check began answering 500"
	}
	return "it began answering 500"
}

// removal is a period in which an address is absent from the published
// DNS set: from when DNS stopped answering with it (the Change removing it
// appeared) until it was put back in the records.
type removal struct {
	ip       netip.Addr
	at       time.Time
	end      time.Time // zero while it lasts
	counting bool      // grace over: probes from base on count
	base     int
}

// counts reports whether a request sent at t, or a probe received then,
// falls in r after grace.
func (r *removal) counts(t time.Time, grace time.Duration) bool {
	return !t.Before(r.at.Add(grace)) && (r.end.IsZero() || t.Before(r.end))
}

func newObserver(w *world, sc scale) *observer {
	return &observer{
		w:         w,
		clock:     sc.clock,
		poll:      sc.poll,
		grace:     sc.removalGrace,
		allow:     sc.checkAllowance,
		addrs:     map[netip.Addr]resolver.Address{},
		inDNS:     map[netip.Addr]bool{},
		applied:   map[netip.Addr]bool{},
		awaiting:  map[netip.Addr]newcomer{},
		last:      map[netip.Addr]health.Status{},
		fail:      map[netip.Addr]*failure{},
		left:      map[netip.Addr]time.Time{},
		gone:      map[netip.Addr]*removal{},
		stale:     map[netip.Addr]int{},
		firstSeen: map[netip.Addr]time.Duration{},
		back:      map[netip.Addr]health.Status{},
	}
}

// run follows the world until ctx ends.
func (o *observer) run(ctx context.Context, emit func(event)) {
	unsub := events.Subscribe(o.w.bus, resolver.Topic(o.w.name), func(c resolver.Change) {
		at := time.Now()
		if o.answers != nil {
			if t, ok := o.answers.since(o.w.name, c.Addresses); ok && t.Before(at) {
				at = t
			}
		}
		o.received(published{c, at})
		emit(o.clock.newEvent(evDNS, o.w.label, "dns: %s", describeChange(c)))
	})
	defer unsub()
	// A failed lookup delays what DNS changes: the steps that wait for a
	// change say why.
	defer events.Subscribe(o.w.bus, resolver.FailureTopic(o.w.name), func(f resolver.Failure) {
		emit(o.clock.newEvent(evFailure, o.w.label, "dns: lookup failed: %v; keeping the last set, retrying in %s", f.Err, ms(f.Next)))
	})()
	t := time.NewTicker(o.poll)
	defer t.Stop()
	for {
		for _, e := range o.step() {
			emit(e)
		}
		select {
		case <-ctx.Done():
			o.close()
			return
		case <-t.C:
		}
	}
}

// received records a Change: an address it drops begins a removal.
func (o *observer) received(c published) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.changes = append(o.changes, c)
	next := map[netip.Addr]bool{}
	for _, a := range c.Addresses {
		next[a.IP] = true
		o.addrs[a.IP] = a
		o.endRemoval(a.IP, c.at)
	}
	for ip := range o.inDNS {
		if !next[ip] {
			r := &removal{ip: ip, at: c.at}
			o.gone[ip] = r
			o.removals = append(o.removals, r)
		}
	}
	o.inDNS = next
}

// step polls the checker once and returns what it noticed.
func (o *observer) step() []event {
	v := o.w.view.applied()
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []event
	ev := func(typ string, ip netip.Addr, format string, args ...any) *event {
		e := o.clock.newEvent(typ, o.w.label, format, args...)
		e.Addr = ip.String()
		out = append(out, e)
		return &out[len(out)-1]
	}

	// Membership: the newest Change the checker has applied. The checker
	// may apply a Change before the observer has received it: then the
	// newest one received is diffed now, and v itself once it arrives.
	joined := map[netip.Addr]bool{}
	if v != o.appliedV {
		if c, ok := o.changeAt(v); ok && c.Version != o.appliedV {
			o.appliedV = c.Version
			next := map[netip.Addr]bool{}
			for _, a := range c.Addresses {
				next[a.IP] = true
			}
			for ip := range o.applied {
				if !next[ip] {
					o.left[ip] = now
					delete(o.awaiting, ip)
					delete(o.back, ip)
					delete(o.firstSeen, ip)
					if _, still := o.w.view.target(o.addrs[ip]); still {
						ev(evTarget, ip, "%s left DNS, but the rebuilt checker still holds it and keeps probing it", ip)
					} else {
						ev(evTarget, ip, "%s removed from the targets: from now on it must not be probed", ip)
					}
				}
			}
			for ip := range next {
				if o.applied[ip] {
					continue
				}
				j := newcomer{published: c.at}
				if at, ok := o.left[ip]; ok {
					j.after = at
					delete(o.left, ip)
				}
				o.awaiting[ip] = j
				joined[ip] = true
				ev(evTarget, ip, "%s added to the targets", ip)
			}
			o.applied = next
		}
	}

	// Statuses and first probes.
	for ip, a := range o.addrs {
		st, ok := o.w.view.target(a)
		if !ok {
			continue
		}
		if j, ok := o.awaiting[ip]; ok && !st.lastProbe.IsZero() && st.lastProbe.After(j.after) {
			d := st.lastProbe.Sub(j.published)
			o.firstSeen[ip] = d
			delete(o.awaiting, ip)
			ev(evProbe, ip, "%s %s (status %s)", ip, probedAfter(d), st.status)
		}
		if joined[ip] {
			o.back[ip] = st.status
		}
		prev := o.last[ip]
		o.last[ip] = st.status
		if prev == health.Unknown || prev == st.status {
			continue
		}
		e := ev(evStatus, ip, "%s %s -> %s", ip, prev, st.status)
		e.From, e.To = prev.String(), st.status.String()
		f := o.fail[ip]
		switch {
		case f != nil && st.status == health.Unhealthy && f.detected.IsZero():
			f.detected = now
			e.Text += fmt.Sprintf(" (detected %s after %s)", ms(now.Sub(f.start)), f.what())
		case f != nil && !f.checkOnly && st.status == health.Healthy:
			o.resets++
			r := ev(evReset, ip, "RESET: %s is healthy again although it still answers 500", ip)
			r.From, r.To = prev.String(), st.status.String()
		}
	}

	// Addresses gone from DNS: count their probes once the grace is over,
	// whether or not the checker applied the removal.
	for ip, r := range o.gone {
		if !r.counting && now.Sub(r.at) >= o.grace {
			r.counting, r.base = true, o.probes(ip)
		}
	}
	return out
}

// endRemoval ends ip's removal at t, if it is gone from DNS: its probes
// no longer count as probes of a removed address.
func (o *observer) endRemoval(ip netip.Addr, t time.Time) {
	if r := o.gone[ip]; r != nil {
		if r.counting {
			o.stale[ip] += o.probes(ip) - r.base
		}
		r.end = t
		delete(o.gone, ip)
	}
}

// recordsSet tells the observer that the DNS records now hold ips: an
// address put back ends its removal now, before any checker can learn of it.
func (o *observer) recordsSet(ips []netip.Addr) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ip := range ips {
		o.endRemoval(ip, now)
	}
}

// close counts the probes of addresses still gone at the end.
func (o *observer) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ip, r := range o.gone {
		if r.counting {
			o.stale[ip] += o.probes(ip) - r.base
			r.base = o.probes(ip)
		}
	}
}

// staleRequest reports whether a request sent at t to ip was sent after
// ip's removal from DNS, grace included.
func (o *observer) staleRequest(ip netip.Addr, t time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.removals {
		if r.ip == ip && r.counts(t, o.grace) {
			return true
		}
	}
	return false
}

// changeAt returns the newest Change whose Version is at most v.
func (o *observer) changeAt(v uint64) (published, bool) {
	for i := len(o.changes) - 1; i >= 0; i-- {
		if o.changes[i].Version <= v {
			return o.changes[i], true
		}
	}
	return published{}, false
}

// probes returns how many probes the backend at ip has received.
func (o *observer) probes(ip netip.Addr) int {
	for _, b := range o.w.backends {
		if b.IP == ip {
			return b.Paths()[probePath]
		}
	}
	return 0
}

// failing records that the backend at ip begins or stops answering 500,
// to every request or (checkOnly) to its probes alone; apply makes it so.
func (o *observer) failing(ip netip.Addr, on, checkOnly bool, apply func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if on {
		f := &failure{ip: ip, checkOnly: checkOnly, start: time.Now()}
		o.fail[ip] = f
		o.failures = append(o.failures, f)
		apply()
		return
	}
	apply()
	if f := o.fail[ip]; f != nil {
		f.end = time.Now()
		delete(o.fail, ip)
	}
}

// staleProbes returns the probes counted so far for ip after its removal
// from DNS.
func (o *observer) staleProbes(ip netip.Addr) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.stale[ip]
	if r := o.gone[ip]; r != nil && r.counting {
		n += o.probes(ip) - r.base
	}
	return n
}

// describeChange lists a Change's set and differences briefly.
func describeChange(c resolver.Change) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(c.Addresses)) + " addresses")
	for _, a := range c.Added {
		b.WriteString(" +" + a.IP.String())
	}
	for _, a := range c.Removed {
		b.WriteString(" -" + a.IP.String())
	}
	return b.String()
}

// probedAfter says how long after an address appeared in DNS its first
// probe began. d is not positive only where the moment it appeared is
// unknown and the probe began before the observer heard of it.
func probedAfter(d time.Duration) string {
	switch {
	case d <= 0:
		return "probed as soon as it appeared in DNS"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("probed %.1fms after DNS began answering with it", float64(d)/float64(time.Millisecond))
	}
	return "probed " + ms(d) + " after DNS began answering with it"
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// statusOf returns the status the checker was last seen to give ip.
func (o *observer) statusOf(ip netip.Addr) health.Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[ip]
}

// firstProbe returns how long after ip (re)joined its first probe began.
func (o *observer) firstProbe(ip netip.Addr) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, ok := o.firstSeen[ip]
	return d, ok
}

// returned returns ip's status right after it last (re)joined the targets.
func (o *observer) returned(ip netip.Addr) (health.Status, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st, ok := o.back[ip]
	return st, ok
}

// isApplied reports whether ip is in the set the checker applied last.
func (o *observer) isApplied(ip netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.applied[ip]
}

// isInDNS reports whether ip is in the latest published set.
func (o *observer) isInDNS(ip netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inDNS[ip]
}

// isFailing reports whether the backend at ip answers 500 to every
// request, and whether its health check alone does.
func (o *observer) isFailing(ip netip.Addr) (all, check bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.fail[ip]
	return f != nil && !f.checkOnly, f != nil && f.checkOnly
}

// failureAt returns a copy of the failure of the backend at ip, if it fails
// now.
func (o *observer) failureAt(ip netip.Addr) (failure, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f := o.fail[ip]; f != nil {
		return *f, true
	}
	return failure{}, false
}

// resetCount returns how many resets were seen.
func (o *observer) resetCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.resets
}

// addrOf returns the resolved address of ip.
func (o *observer) addrOf(ip netip.Addr) resolver.Address {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addrs[ip]
}
