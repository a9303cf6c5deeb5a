package main

import "time"

// scale holds the story's timings, all derived from its total length so
// that -duration and -speed stretch or shrink everything together.
type scale struct {
	clock          clock
	total          time.Duration // the whole story
	unit           time.Duration // a twentieth of it: steps are placed in units
	interval       time.Duration // active probes, healthy and unhealthy
	probeTimeout   time.Duration
	removalGrace   time.Duration // see deliverySlack
	checkAllowance time.Duration // see newScale
	requestTimeout time.Duration
	minTTL         time.Duration // the Source's MinTTL: re-resolution period
	dnsTimeout     time.Duration
	poll           time.Duration // how often the observer looks at a checker
	ttl            uint32        // of the DNS records, in seconds
	rate           int           // requests per second
}

// deliverySlack is how long, on a busy machine, a Change may take from the
// DNS answer to the checker and the balancer applying it. A probe or a
// request counts as one to a removed address when it comes later than this
// plus one probe timeout (a probe already in flight) after DNS stopped
// answering with the address.
const deliverySlack = 100 * time.Millisecond

// newScale returns the timings of a story lasting total, with traffic at
// rate requests per second. At 20 s: probes every 500 ms, TTL 1 s.
func newScale(total time.Duration, rate int) scale {
	u := total / 20
	sc := scale{
		clock:          clock{start: time.Now()},
		total:          total,
		unit:           u,
		interval:       max(u/2, 20*time.Millisecond),
		probeTimeout:   min(max(u*3/10, 100*time.Millisecond), 300*time.Millisecond),
		requestTimeout: 2 * time.Second,
		minTTL:         max(u, 50*time.Millisecond),
		dnsTimeout:     time.Second,
		poll:           5 * time.Millisecond,
		rate:           rate,
	}
	sc.removalGrace = sc.probeTimeout + deliverySlack
	// Two failed probes in a row, as both worlds' checkers need, take two
	// intervals: a checker that never marks a backend whose health check
	// fails unhealthy is counted sending it traffic from then on.
	sc.checkAllowance = 2 * sc.interval
	if u >= time.Second {
		sc.ttl = uint32(u / time.Second) // else TTL 0: MinTTL sets the pace
	}
	return sc
}

// at returns the moment u units into the story.
func (sc scale) at(u float64) time.Time {
	return sc.clock.start.Add(time.Duration(u * float64(sc.unit)))
}

// maxRequests bounds the traffic of one story.
func (sc scale) maxRequests() int {
	return int(sc.total.Seconds()*float64(sc.rate)*1.2) + 10
}
