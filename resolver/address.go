package resolver

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// Address is one resolved endpoint of a name.
//
// Address is comparable; two Addresses are the same target when IP, Port and
// Hostname are equal (Weight and Priority are attributes of the target, not
// part of its identity).
type Address struct {
	IP       netip.Addr
	Port     uint16
	Hostname string // the name it was resolved for: the SRV target, else the queried name
	Weight   uint16 // SRV weight; 0 for A/AAAA
	Priority uint16 // SRV priority
}

// HostPort returns the address in "ip:port" form, suitable for net.Dial.
func (a Address) HostPort() string {
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(int(a.Port)))
}

// String returns "hostname/ip:port", or "ip:port" when Hostname is empty.
func (a Address) String() string {
	if a.Hostname == "" {
		return a.HostPort()
	}
	return a.Hostname + "/" + a.HostPort()
}

// Compare orders addresses canonically: by IP, then port, hostname,
// priority and weight. It returns -1, 0 or +1.
func Compare(a, b Address) int {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c
	}
	return cmp.Or(
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Hostname, b.Hostname),
		cmp.Compare(a.Priority, b.Priority),
		cmp.Compare(a.Weight, b.Weight),
	)
}

// Sort sorts addrs in place in canonical order (see Compare), so that equal
// sets compare equal element by element.
func Sort(addrs []Address) {
	slices.SortFunc(addrs, Compare)
}
