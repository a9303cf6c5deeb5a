package balancer

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-go/vigil/resolver"
)

// callFor picks until the pick is a, holding the other calls meanwhile, and
// returns its Call; the others are ended with Ignore.
func callFor(t *testing.T, b *Balancer, a resolver.Address) Call {
	t.Helper()
	var others []Call
	defer func() {
		for _, o := range others {
			o.Done(Ignore)
		}
	}()
	for range 1000 {
		c, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if c.Address.Key() == a.Key() {
			return c
		}
		others = append(others, c)
	}
	t.Fatalf("%v never picked", a)
	return Call{}
}

// The estimate jumps to a peak at once, decays with the time constant, and
// moves toward lower latencies by the weight of the time since the last one.
func TestPeakEWMAEstimate(t *testing.T) {
	const tau = float64(10 * time.Second)
	var now int64
	l := new(load)
	cost := func() float64 { return l.cost(now, tau) }
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*1e-9+1e-6 {
			t.Errorf("%s: %.3f ns, want %.3f", what, got, want)
		}
	}
	if got := cost(); got != 0 {
		t.Fatalf("unmeasured idle target costs %.0f, want 0", got)
	}
	l.picked.Add(1)
	if got := cost(); got < 1e18 {
		t.Errorf("unmeasured target with a request in flight costs %.0f, want more than any measured one", got)
	}
	l.picked.Add(-1)

	l.observe(now, 10e6, false, tau)
	near("first response", cost(), 10e6)
	l.observe(now, 100e6, false, tau)
	near("peak", cost(), 100e6)
	now += int64(tau)
	near("one time constant later", cost(), 100e6/math.E)
	l.observe(now, 20e6, false, tau)
	near("a faster response then", cost(), 100e6/math.E+20e6*(1-1/math.E))

	// A bound (failure, timeout, abandoned request) raises, never lowers.
	before := cost()
	l.observe(now, 1e6, true, tau)
	near("fast failure", cost(), before)
	l.observe(now, 1e9, true, tau)
	near("slow timeout", cost(), 1e9)

	// Requests in flight multiply the cost.
	l.picked.Add(2)
	near("two in flight", cost(), 3e9)
}

// Of two candidates, the cheaper one takes every pick.
func TestPeakEWMAPicksCheaper(t *testing.T) {
	clk := newFakeClock()
	as := addrs(2)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(PeakEWMA), WithClock(clk))
	for _, x := range []struct {
		a   resolver.Address
		rtt time.Duration
	}{{as[0], 50 * time.Millisecond}, {as[1], time.Millisecond}} {
		call := callFor(t, b, x.a)
		clk.Advance(x.rtt)
		call.Done(Success)
		// The latency is the clock's time from PickCall to Done.
		if got := call.load.cost(b.now(), b.tau); got != float64(x.rtt) {
			t.Fatalf("%v: estimate %.0f ns after a response in %v", x.a, got, x.rtt)
		}
	}
	for range 500 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() != as[1].Key() {
			t.Fatal("picked the target with the 50 times higher latency")
		}
		call.Done(Success) // 0 ns each: the cheap one stays cheap
	}
}

// cheaper, which reads no clock, orders two targets as their costs at any
// time do.
func TestPeakEWMACheaperMatchesCost(t *testing.T) {
	const tau = float64(10 * time.Second)
	rng := rand.New(rand.NewPCG(5, 6))
	mk := func() *load {
		l := new(load)
		l.picked.Store(int64(rng.IntN(4)))
		if rng.IntN(5) > 0 {
			l.ewma.Store(math.Float64bits(float64(1 + rng.IntN(100e6))))
			l.stamp.Store(int64(rng.IntN(int(60 * time.Second))))
		}
		return l
	}
	for range 10_000 {
		l, o := mk(), mk()
		now := int64(60*time.Second) + int64(rng.IntN(int(time.Minute)))
		lc, oc := l.cost(now, tau), o.cost(now, tau)
		if math.Abs(lc-oc) <= 1e-9*max(lc, oc) {
			continue // a tie within rounding may go either way
		}
		if got, want := l.cheaper(o, tau), lc < oc; got != want {
			t.Fatalf("cheaper = %v, costs %.3f and %.3f", got, lc, oc)
		}
	}
}

func TestDecay(t *testing.T) {
	for x := 0.0; x < 50; x = x*1.5 + 1e-9 {
		if d, e := decay(x), math.Exp(-x); math.Abs(d-e) > 1e-9*e {
			t.Fatalf("decay(%g) = %g, exp(-x) = %g", x, d, e)
		}
	}
}
