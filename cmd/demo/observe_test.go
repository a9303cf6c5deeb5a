package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/resolver"
)

// fakeView is a checker that applies whatever Version the test says.
type fakeView struct {
	version atomic.Uint64
	targets map[netip.Addr]bool // read only once the test runs
}

func (f *fakeView) target(a resolver.Address) (targetState, bool) {
	if !f.targets[a.IP] {
		return targetState{}, false
	}
	return targetState{status: health.Healthy}, true
}
func (f *fakeView) remembered(resolver.Address) (health.Status, bool) { return 0, false }
func (f *fakeView) applied() uint64                                   { return f.version.Load() }
func (f *fakeView) run(ctx context.Context) error                     { <-ctx.Done(); return nil }

// addrs returns the resolved addresses of ips on port 80.
func addrs(ips ...string) []resolver.Address {
	out := make([]resolver.Address, len(ips))
	for i, ip := range ips {
		out[i] = resolver.Address{IP: netip.MustParseAddr(ip), Port: 80}
	}
	return out
}

// The checker and the observer hear of a Change in no fixed order: when the
// checker has applied a Version the observer has not received yet, the
// observer diffs that Version once it arrives.
func TestObserverCatchesUpWithAppliedChange(t *testing.T) {
	fv := &fakeView{targets: map[netip.Addr]bool{}}
	w := &world{label: "vigil", view: fv}
	o := newObserver(w, newScale(3*time.Second, 10))
	receive := func(c resolver.Change) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.changes = append(o.changes, published{c, time.Now()})
		for _, a := range c.Addresses {
			o.addrs[a.IP] = a
		}
	}
	a, b := netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.0.12")

	receive(resolver.Change{Version: 1, Addresses: addrs("127.0.0.11", "127.0.0.12")})
	fv.targets[a], fv.targets[b] = true, true
	fv.version.Store(1)
	o.step()
	if !o.isApplied(a) || !o.isApplied(b) {
		t.Fatal("the first Change was not diffed")
	}

	// The checker applies Version 2 before the observer receives it.
	delete(fv.targets, b)
	fv.version.Store(2)
	o.step()
	if !o.isApplied(b) {
		t.Fatal("a removal was diffed before the observer received its Change")
	}

	receive(resolver.Change{Version: 2, Addresses: addrs("127.0.0.11")})
	var texts []string
	for _, e := range o.step() {
		texts = append(texts, e.Text)
	}
	if o.isApplied(b) {
		t.Errorf("Version 2 was never diffed: %s still counts as a target; events %q", b, texts)
	}
	if !strings.Contains(strings.Join(texts, "\n"), b.String()+" removed from the targets") {
		t.Errorf("no removal of %s reported: %q", b, texts)
	}
}

// The state line of a step shares out the traffic of that step alone,
// however short the step.
func TestStepSharesCountFromStepStart(t *testing.T) {
	bs, err := startBackends(0)
	if err != nil {
		t.Fatal(err)
	}
	defer backendtest.CloseAll(bs)
	w := &world{label: "vigil", backends: bs, view: &fakeView{}}
	w.obs = newObserver(w, newScale(3*time.Second, 10))
	w.shares.add(nil)
	get := func(b *backendtest.Backend, n int) {
		t.Helper()
		for i := range n {
			resp, err := http.Get("http://" + b.HostPort() + trafficPath + strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	get(bs[0], 3) // the step before
	w.markStep()
	get(bs[1], 2)
	rows := w.stepRows()
	if rows[0].Share != 0 || rows[1].Share != 1 {
		t.Errorf("shares in the step: %s %.2f, %s %.2f; want 0 and 1", rows[0].Addr, rows[0].Share, rows[1].Addr, rows[1].Share)
	}
	http.DefaultClient.CloseIdleConnections()
}

// A failed DNS lookup is narrated: it explains a change that comes late.
func TestObserverNarratesDNSFailures(t *testing.T) {
	bus := events.New()
	defer bus.Close()
	w := &world{label: "vigil", name: "api.demo.test", bus: bus, view: &fakeView{}}
	o := newObserver(w, newScale(3*time.Second, 10))
	var got testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		o.run(ctx, func(e event) {
			if e.Type == evFailure {
				fmt.Fprintln(&got, e.Text)
			}
		})
	})
	defer wg.Wait()
	defer cancel()
	// The observer may subscribe after a first Publish: publish until it tells.
	testutil.Eventually(t, 5*time.Second, "the failure narrated", func() bool {
		events.Publish(bus, resolver.FailureTopic(w.name), resolver.Failure{Name: w.name, Err: errors.New("i/o timeout"), Next: 1200 * time.Millisecond})
		return strings.Contains(got.String(), "dns: lookup failed: i/o timeout; keeping the last set, retrying in 1200ms")
	})
}
