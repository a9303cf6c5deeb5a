package rendezvous

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/vigil-go/vigil/resolver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The scores are part of the format: a change here changes every client's
// subset and every fleet's probers.
func TestScoreIsStable(t *testing.T) {
	if got, want := Score(Seed("client-1"), "10.0.0.1:8080/api.internal"), Score(Seed("client-1"), "10.0.0.1:8080/api.internal"); got != want {
		t.Fatalf("Score not deterministic: %x and %x", got, want)
	}
	if got := Seed(""); got != 0xef46db3751d8e999 {
		t.Fatalf("Seed(\"\") = %#x, want XXH64 of the empty string, 0xef46db3751d8e999", got)
	}
	if Score(1, "a") == Score(2, "a") {
		t.Fatal("the seed does not change the score")
	}
}

func TestAddressString(t *testing.T) {
	for _, tc := range []struct {
		k    resolver.Key
		want string
	}{
		{resolver.Key{IP: netip.MustParseAddr("10.0.0.1"), Port: 80, Hostname: "api"}, "10.0.0.1:80/api"},
		{resolver.Key{IP: netip.MustParseAddr("fe80::1%eth0"), Port: 443}, "[fe80::1%eth0]:443/"},
		{resolver.Key{Port: 80, Hostname: "x"}, "invalid:80/x"},
	} {
		if got := AddressString(tc.k); got != tc.want {
			t.Errorf("AddressString(%v) = %q, want %q", tc.k, got, tc.want)
		}
		if got, want := ScoreAddress(7, tc.k), Score(7, tc.want); got != want {
			t.Errorf("ScoreAddress(%v) = %x, want Score of its string, %x", tc.k, got, want)
		}
	}
}
