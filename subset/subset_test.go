package subset_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-go/vigil/resolver"
	"github.com/vigil-go/vigil/subset"
)

// addrs returns n addresses 10.0.x.y:8080 of hostname api.internal, in
// canonical order.
func addrs(n int) []resolver.Address {
	out := make([]resolver.Address, n)
	for i := range out {
		out[i] = resolver.Address{
			IP:       netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			Port:     8080,
			Hostname: "api.internal",
		}
	}
	return out
}

func keys(as []resolver.Address) map[resolver.Key]bool {
	m := make(map[resolver.Key]bool, len(as))
	for _, a := range as {
		m[a.Key()] = true
	}
	return m
}

// changed counts the entries of next that were not in prev.
func changed(prev, next []resolver.Address) int {
	p := keys(prev)
	n := 0
	for _, a := range next {
		if !p[a.Key()] {
			n++
		}
	}
	return n
}

// Bad input is a *ConfigError naming the argument, matching
// ErrInvalidConfig (and ErrInvalid, its deprecated name), saying
// "subset: invalid config: <Field>: ...".
func TestNewRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		id    string
		size  int
		field string
	}{{"", 3, "ID"}, {"a", 0, "Size"}, {"a", -1, "Size"}} {
		_, err := subset.New(tc.id, tc.size)
		var ce *subset.ConfigError
		if !errors.Is(err, subset.ErrInvalidConfig) || !errors.Is(err, subset.ErrInvalid) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%q, %d): %v, want a ConfigError on %s", tc.id, tc.size, err, tc.field)
			continue
		}
		if want := "subset: invalid config: " + tc.field + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q does not start with %q", err, want)
		}
	}
}

func TestFilterKeepsSizeInInputOrder(t *testing.T) {
	s, err := subset.New("client-1", 10)
	if err != nil {
		t.Fatal(err)
	}
	in := addrs(100)
	before := slices.Clone(in)
	out := s.Filter(in)
	if len(out) != 10 {
		t.Fatalf("got %d addresses, want 10", len(out))
	}
	if !slices.Equal(in, before) {
		t.Fatal("Filter modified its input")
	}
	// A subsequence of the input, in its order.
	j := 0
	for _, a := range out {
		for j < len(in) && in[j] != a {
			j++
		}
		if j == len(in) {
			t.Fatalf("%v is not in the input after the previous one: order not kept", a)
		}
	}
	// Deterministic, also from a fresh Subset and in any input order.
	again, _ := subset.New("client-1", 10)
	rev := slices.Clone(in)
	slices.Reverse(rev)
	got := again.Filter(rev)
	if changed(out, got) != 0 || len(got) != 10 {
		t.Fatalf("another Subset of the same id, input reversed: %v, want %v", got, out)
	}
	// Another id, another subset.
	other, _ := subset.New("client-2", 10)
	if changed(out, other.Filter(in)) == 0 {
		t.Fatal("client-1 and client-2 have the same subset")
	}
}

func TestFilterSmallAndDuplicateSets(t *testing.T) {
	s, _ := subset.New("client-1", 3)
	small := addrs(3)
	if got := s.Filter(small); !slices.Equal(got, small) {
		t.Fatalf("a set no larger than the size: got %v, want it whole", got)
	}
	// Duplicates of one Key count once: 3 distinct addresses, each twice,
	// with other Weights, are kept whole.
	dup := append(addrs(3), addrs(3)...)
	for i := 3; i < 6; i++ {
		dup[i].Weight = 7
	}
	if got := s.Filter(dup); !slices.Equal(got, dup) {
		t.Fatalf("3 distinct addresses twice: got %v, want the input", got)
	}
	// 5 distinct addresses, one of them twice: 3 distinct kept, first
	// appearances.
	five := addrs(5)
	withDup := append(slices.Clone(five), five[0], five[4])
	got := s.Filter(withDup)
	if len(got) != 3 || len(keys(got)) != 3 {
		t.Fatalf("got %v, want 3 distinct addresses", got)
	}
	if changed(s.Filter(five), got) != 0 {
		t.Fatalf("a duplicate changed the subset: %v vs %v", got, s.Filter(five))
	}
	if got := s.Filter(nil); got != nil {
		t.Fatalf("Filter(nil) = %v", got)
	}
	var zero *subset.Subset
	if got := zero.Filter(five); !slices.Equal(got, five) {
		t.Fatal("a nil Subset does not keep every address")
	}
	if got := subset.Filter("x", 0)(five); !slices.Equal(got, five) {
		t.Fatal("Filter with size 0 does not keep every address")
	}
}

// An address coming or going changes at most one entry of any client's
// subset (gRFC A68's property): for 1,000 clients, each of 10 addresses of
// 100 leaving (all 100 for the first 100 clients), and one joining.
func TestOneAddressChangesAtMostOneEntry(t *testing.T) {
	const n, m, k = 1000, 100, 10
	all := addrs(m + 1)
	base, newcomer := all[:m], all[m]
	worstLeave, worstJoin, moved := 0, 0, 0
	for c := range n {
		s, _ := subset.New(fmt.Sprintf("client-%d", c), k)
		before := s.Filter(base)
		in := keys(before)
		for i := range base {
			if c >= 100 && i%10 != c%10 {
				continue
			}
			rest := slices.Concat(base[:i], base[i+1:])
			after := s.Filter(rest)
			if len(after) != k {
				t.Fatalf("client %d: %d addresses after a removal", c, len(after))
			}
			d := changed(before, after)
			if !in[base[i].Key()] && d != 0 {
				t.Fatalf("client %d: address %d, outside the subset, left and changed %d entries", c, i, d)
			}
			worstLeave = max(worstLeave, d)
		}
		after := s.Filter(append(slices.Clone(base), newcomer))
		d := changed(before, after)
		worstJoin = max(worstJoin, d)
		moved += d
	}
	t.Logf("entries changed per client: at most %d when one address leaves, at most %d when one joins (%d of %d clients took the newcomer)",
		worstLeave, worstJoin, moved, n)
	if worstLeave > 1 || worstJoin > 1 {
		t.Fatalf("an address leaving changed up to %d entries, joining up to %d; want at most 1", worstLeave, worstJoin)
	}
	if moved == 0 {
		t.Fatal("no client took the newcomer: the subsets do not spread")
	}
}
