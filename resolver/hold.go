package resolver

import (
	"slices"
	"time"
)

// holdParts returns the last published addresses that res does not give
// but that are kept, and when the earliest of the limited holds ends (0 if
// none):
//
//   - of an IP name, those of a family whose lookup failed, as long as it
//     fails, as the whole set is kept while the whole resolution fails;
//   - of an SRV target, those of a family whose lookup failed or that
//     vanished (NXDOMAIN or NODATA for every family), for NXDomainHold from
//     the first resolution that found it so, as the queried name itself is
//     kept after NXDOMAIN and NODATA. A part that is answered again starts
//     a new hold when it fails or vanishes again.
func (s *Source) holdParts(res result, now time.Time, st *runState) ([]Address, time.Duration) {
	limited := res.vanished
	kept := make(map[part]bool)
	if s.cfg.Type == SRV {
		limited = append(slices.Clone(res.vanished), res.failed...)
	} else {
		for _, p := range res.failed {
			kept[p] = true
		}
	}
	since := make(map[part]time.Time, len(limited))
	for _, p := range limited {
		t, ok := st.holds[p]
		if !ok {
			t = now
		}
		since[p] = t
	}
	st.holds = since // a part answered again is forgotten
	if len(kept) == 0 && len(since) == 0 {
		return nil, 0
	}
	var held []Address
	var ends time.Duration
	for _, a := range s.Addresses() {
		k := partOf(a)
		if kept[k] {
			held = append(held, a)
			continue
		}
		t, ok := since[k]
		if !ok {
			continue
		}
		left := s.cfg.NXDomainHold - now.Sub(t)
		if left <= 0 {
			continue
		}
		held = append(held, a)
		if ends == 0 || left < ends {
			ends = left
		}
	}
	return held, ends
}

// apply publishes answer, plus the addresses held (see holdParts) and
// those HoldObsolete still keeps, and returns when the earliest address
// HoldObsolete keeps expires (0 if none is kept). Held addresses do not
// count as seen in an answer. why says what led to the resolution, for the
// log of a Change.
func (s *Source) apply(answer, held []Address, now time.Time, st *runState, why string) time.Duration {
	if s.cfg.HoldObsolete <= 0 {
		s.publish(withHeld(answer, held), why)
		return 0
	}
	in := make(map[Key]bool, len(answer)+len(held))
	for _, a := range answer {
		k := a.Key()
		in[k] = true
		st.seen[k] = now
	}
	for _, a := range held {
		in[a.Key()] = true
	}
	set := withHeld(answer, held)
	var expiry time.Duration
	for _, a := range s.Addresses() {
		k := a.Key()
		if in[k] {
			continue
		}
		left := s.cfg.HoldObsolete - now.Sub(st.seen[k])
		if left <= 0 {
			delete(st.seen, k)
			continue
		}
		set = append(set, a)
		if expiry == 0 || left < expiry {
			expiry = left
		}
	}
	s.publish(canonical(set), why)
	return expiry
}

// withHeld returns answer and held as one set in canonical order.
func withHeld(answer, held []Address) []Address {
	if len(held) == 0 {
		return slices.Clone(answer)
	}
	return canonical(append(slices.Clone(answer), held...))
}
