package balancer

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// shards tells each pick which of a few shards to write to, so that picks
// on different cores write to different cache lines (Envoy keeps its
// balancers' state per worker thread for the same reason).
//
// Go offers no public per-P index, but sync.Pool keeps a private entry per
// P: the pool holds pointers to shard numbers, and a pick takes its P's
// entry and puts it back at once, reading the number. In the steady state
// each P keeps its own number; the pool drops its entries at garbage
// collection (they come back from its victim cache) and, under the race
// detector, a quarter of the Puts at random, and every entry it has to make
// anew takes the next number in turn. Two Ps may then share a number for a
// while: shards are written atomically, so that only costs speed.
type shards struct {
	n    int
	ids  []int32 // 0..n-1; the pool holds pointers to these
	next atomic.Uint32
	pool sync.Pool
}

// maxShards bounds the shards of a balancer, whatever GOMAXPROCS is.
const maxShards = 64

// newShards returns the shards of a balancer: one per P at the time,
// at most maxShards.
func newShards() *shards {
	return newShardsOf(min(max(runtime.GOMAXPROCS(0), 1), maxShards))
}

func newShardsOf(n int) *shards {
	s := &shards{n: n, ids: make([]int32, n)}
	for i := range s.ids {
		s.ids[i] = int32(i)
	}
	s.pool.New = func() any { return &s.ids[int(s.next.Add(1)-1)%n] }
	return s
}

// id returns the calling goroutine's shard, in [0, n).
func (s *shards) id() int {
	p := s.pool.Get().(*int32)
	s.pool.Put(p)
	return int(*p)
}

// rotor is the position of a rotation, one per shard: each shard's picks
// walk the rotation on their own. Each position is alone on its pair of
// cache lines (adjacent-line prefetch fetches two).
type rotor struct {
	at []position
}

type position struct {
	n atomic.Uint64
	_ [120]byte
}

// newRotor returns the positions of n shards; shard i starts i entries
// further on, so that the shards' first picks differ.
func newRotor(n int) *rotor {
	r := &rotor{at: make([]position, n)}
	for i := range r.at {
		r.at[i].n.Store(uint64(i))
	}
	return r
}

// next advances shard i's position and returns it.
func (r *rotor) next(i int) uint64 { return r.at[i].n.Add(1) }
