package health

import "container/heap"

// targetHeap is a min-heap of targets ordered by less. Each target keeps
// its position in the heap in the int that slot returns (-1 when it is not
// in it), so that it can be moved or taken out in O(log n). The checker has
// two: its probe queue, by next-probe time, and its ejections, by their
// end. Its methods are called with the checker's lock held.
type targetHeap struct {
	ts   []*target
	less func(a, b *target) bool
	slot func(t *target) *int
}

func (h *targetHeap) Len() int           { return len(h.ts) }
func (h *targetHeap) Less(i, j int) bool { return h.less(h.ts[i], h.ts[j]) }
func (h *targetHeap) Swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	*h.slot(h.ts[i]) = i
	*h.slot(h.ts[j]) = j
}

// Push and Pop are heap.Interface's; use put, remove and pop.
func (h *targetHeap) Push(x any) {
	t := x.(*target)
	*h.slot(t) = len(h.ts)
	h.ts = append(h.ts, t)
}

func (h *targetHeap) Pop() any {
	n := len(h.ts) - 1
	t := h.ts[n]
	h.ts[n] = nil
	h.ts = h.ts[:n]
	*h.slot(t) = -1
	return t
}

// put adds t, or moves it to where its key now puts it.
func (h *targetHeap) put(t *target) {
	if i := *h.slot(t); i >= 0 {
		heap.Fix(h, i)
		return
	}
	heap.Push(h, t)
}

// remove takes t out, if it is in.
func (h *targetHeap) remove(t *target) {
	if i := *h.slot(t); i >= 0 {
		heap.Remove(h, i)
	}
}

// head returns the least target, or nil when the heap is empty.
func (h *targetHeap) head() *target {
	if len(h.ts) == 0 {
		return nil
	}
	return h.ts[0]
}

// pop takes the least target out; the heap is not empty.
func (h *targetHeap) pop() *target { return heap.Pop(h).(*target) }

// first reports whether t is the least target.
func (h *targetHeap) first(t *target) bool { return *h.slot(t) == 0 }

// newProbeQueue returns the heap of queued targets by next-probe time.
func newProbeQueue() targetHeap {
	return targetHeap{
		less: func(a, b *target) bool { return a.next.Before(b.next) },
		slot: func(t *target) *int { return &t.index },
	}
}

// newEjectionQueue returns the heap of ejected targets by the end of their
// ejection.
func newEjectionQueue() targetHeap {
	return targetHeap{
		less: func(a, b *target) bool { return a.state.passive.until.Before(b.state.passive.until) },
		slot: func(t *target) *int { return &t.ejIndex },
	}
}
