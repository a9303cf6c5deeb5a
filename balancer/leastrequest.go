package balancer

// leastRequest draws two distinct candidates and picks the one with fewer
// requests in flight (the first on a tie). It ignores SRV weights.
type leastRequest struct {
	loads []*load // one per candidate
}

func newLeastRequest(_ picker, c candidates) picker { return &leastRequest{loads: c.loads} }

func (p *leastRequest) pick(*shards) int { return p.draw() }

func (p *leastRequest) draw() int {
	if len(p.loads) == 1 {
		return 0
	}
	i, j := twoIndices(len(p.loads))
	if p.loads[j].inFlight() < p.loads[i].inFlight() {
		return j
	}
	return i
}
