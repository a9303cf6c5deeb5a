package balancer

import (
	"testing"

	"github.com/vigil-go/vigil/resolver"
)

func TestLeastRequest(t *testing.T) {
	as := addrs(3)
	c := newChecker(t, as...)
	b := New(c, WithPolicy(LeastRequest))
	// Calls held open: two random choices keep the loads level.
	var held []Call
	for range 300 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, call)
	}
	n := make(map[resolver.Key]int)
	for _, h := range held {
		n[h.Address.Key()]++
	}
	for _, a := range as {
		if v := n[a.Key()]; v < 95 || v > 105 {
			t.Errorf("%v has %d calls in flight, want about 100", a, v)
		}
	}
	for _, h := range held {
		h.Done(Ignore)
	}
	for i, l := range b.snap.Load().levels[0].loads {
		if v := l.inFlight(); v != 0 {
			t.Errorf("target %d: %d in flight after every Done", i, v)
		}
	}
	// A loaded target is never the less loaded of two choices: load as[0]
	// by holding calls while the others are held too, then release those.
	var busy, others []Call
	for len(busy) < 20 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() == as[0].Key() {
			busy = append(busy, call)
		} else {
			others = append(others, call)
		}
	}
	for _, o := range others {
		o.Done(Ignore)
	}
	for range 1000 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() == as[0].Key() {
			t.Fatal("picked the target with 20 requests in flight over idle ones")
		}
		call.Done(Ignore)
	}
	// Counters survive a snapshot rebuild.
	c.SetTargets(append(as, addr(9)))
	for range 1000 {
		call, err := b.PickCall()
		if err != nil {
			t.Fatal(err)
		}
		if call.Address.Key() == as[0].Key() {
			t.Fatal("the in-flight count was lost by a rebuild")
		}
		call.Done(Ignore)
	}
	for _, h := range busy {
		h.Done(Success)
	}
}
