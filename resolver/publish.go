package resolver

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-go/vigil/events"
)

// maxLogged bounds the addresses a log line of a Change lists, added and
// removed each.
const maxLogged = 8

// publish makes set the current one and publishes a Change if it differs
// from the last published set. Before this Source has published anything,
// the last published set is that of the latest Change on the bus for its
// name (from an earlier Source for that name), if there is one: an
// unchanged set publishes nothing, and Added and Removed are relative to
// that Change. why says what led to it, for the log.
func (s *Source) publish(set []Address, why string) {
	latest, ok := events.Latest(s.bus, s.topic)
	s.mu.Lock()
	prev, known := s.addrs, s.published
	if !known && ok {
		prev, known = latest.Addresses, true
	}
	if known && slices.Equal(set, prev) {
		if !s.published && ok {
			s.version = latest.Version // the set in effect is that Change's
		}
		s.addrs, s.published = slices.Clone(set), true
		s.mu.Unlock()
		return
	}
	v := max(s.version+1, versionClock())
	if ok {
		v = max(v, latest.Version+1)
	}
	c := Change{
		Name:      s.host,
		Version:   v,
		Addresses: slices.Clone(set),
		Added:     diff(set, prev),
		Removed:   diff(prev, set),
	}
	s.addrs, s.published, s.version = slices.Clone(set), true, v
	s.mu.Unlock()
	if !known {
		why = "the first answer"
	}
	s.log.Info("resolver: address set changed", slog.String("because", why),
		slog.Uint64("version", v), slog.Int("added", len(c.Added)), slog.Int("removed", len(c.Removed)),
		slog.Int("total", len(c.Addresses)),
		slog.String("added_addrs", listed(c.Added)), slog.String("removed_addrs", listed(c.Removed)))
	events.Publish(s.bus, s.topic, c)
}

// listed returns up to maxLogged of addrs, comma-separated, and how many
// more there are.
func listed(addrs []Address) string {
	var b strings.Builder
	for i, a := range addrs {
		if i == maxLogged {
			b.WriteString(" and " + strconv.Itoa(len(addrs)-i) + " more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// diff returns the addresses of a whose target is not in b.
func diff(a, b []Address) []Address {
	in := make(map[Key]bool, len(b))
	for _, x := range b {
		in[x.Key()] = true
	}
	var out []Address
	for _, x := range a {
		if !in[x.Key()] {
			out = append(out, x)
		}
	}
	return out
}
