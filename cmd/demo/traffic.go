package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-go/vigil/balancer"
)

// generator sends GET requests at a steady rate through a client, each to
// its own path (trafficPath + sequence number), so that a backend's path
// counts tell exactly which requests reached it. It records when each was
// sent and what status it got.
type generator struct {
	client  *http.Client
	url     string
	every   time.Duration
	limit   int
	workers int

	mu     sync.Mutex
	sent   []time.Time // by sequence number; zero: never sent
	status []int       // by sequence number; 0: no response

	issued, noHealthy, failed atomic.Int64
}

func newGenerator(c *http.Client, url string, rate, limit int) *generator {
	return &generator{
		client:  c,
		url:     url,
		every:   time.Second / time.Duration(max(rate, 1)),
		limit:   limit,
		workers: 4,
		sent:    make([]time.Time, limit),
		status:  make([]int, limit),
	}
}

// run sends requests until ctx ends or the limit is reached. A tick whose
// request no worker can take is skipped, so the rate is an upper bound.
func (g *generator) run(ctx context.Context) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range g.workers {
		wg.Go(func() {
			for n := range jobs {
				g.send(ctx, n)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	t := time.NewTicker(g.every)
	defer t.Stop()
	for n := 0; n < g.limit; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case jobs <- n:
			n++
		default:
		}
	}
}

// send sends request n.
func (g *generator) send(ctx context.Context, n int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+strconv.Itoa(n), nil)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.sent[n] = time.Now()
	g.mu.Unlock()
	g.issued.Add(1)
	resp, err := g.client.Do(req)
	if err != nil {
		if isNoHealthy(err) {
			g.noHealthy.Add(1)
		} else {
			g.failed.Add(1)
		}
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	g.mu.Lock()
	g.status[n] = resp.StatusCode
	g.mu.Unlock()
}

// request returns when request n was sent and the status it got.
func (g *generator) request(n int) (time.Time, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n < 0 || n >= len(g.sent) {
		return time.Time{}, 0
	}
	return g.sent[n], g.status[n]
}

// isNoHealthy reports whether err says that no healthy target was there to
// send a request to.
func isNoHealthy(err error) bool {
	return errors.Is(err, balancer.ErrNoHealthy) || errors.Is(err, errNoHealthyBaseline)
}

// errNoHealthyBaseline is the baseline's answer when it holds no address
// healthy.
var errNoHealthyBaseline = errors.New("baseline: no healthy target")
