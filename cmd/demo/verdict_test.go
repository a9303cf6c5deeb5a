package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-go/vigil"
	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/backendtest"
	"github.com/vigil-go/vigil/internal/dnstest"
	"github.com/vigil-go/vigil/resolver"
)

// frozenView is vigil's checker fed only the first Change from the bus: a
// core that stops following DNS after it started. It is wired by hand, as
// vigil.New would never wire it.
type frozenView struct {
	vigilView
	src     *resolver.Source
	bus     *events.Bus
	name    string
	version atomic.Uint64
}

func (f *frozenView) applied() uint64 { return f.version.Load() }

func (f *frozenView) run(ctx context.Context) error {
	unsub := events.Subscribe(f.bus, resolver.Topic(f.name), func(c resolver.Change) {
		if f.version.Load() == 0 {
			f.c.SetTargets(c.Addresses)
			f.version.Store(c.Version)
		}
	})
	defer unsub()
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.src.Run(ctx) })
	defer wg.Wait()
	return f.c.Run(ctx)
}

// newFrozenWorld builds vigil's world around a frozenView.
func newFrozenWorld(sc scale, dns *dnstest.Server, name string, bs []*backendtest.Backend) (*world, error) {
	w := newWorld("vigil", sc, dns, name, bs)
	hc := vigilHealth(sc)
	hc.Name = name
	c, err := health.NewChecker(hc, nil)
	if err != nil {
		return nil, err
	}
	src, err := w.newSource(sc)
	if err != nil {
		return nil, err
	}
	w.view, w.checker = &frozenView{vigilView: vigilView{c: c}, src: src, bus: w.bus, name: name}, c
	tr := &pickTransport{b: balancer.New(c), base: &http.Transport{}}
	w.client = &http.Client{Transport: tr, Timeout: sc.requestTimeout}
	w.finish(sc)
	return w, nil
}

// A checker that applies no Change after the first fails the run: its
// steps show nothing of what they should, and the address that left DNS
// is counted as probed after its removal although the checker never
// applied that removal.
func TestFrozenCheckerFails(t *testing.T) {
	opts := storyOptions{duration: 3 * time.Second, speed: 1, rate: 80, json: true, newVigil: newFrozenWorld}
	var out, errOut bytes.Buffer
	code := runStory(context.Background(), opts, &out, &errOut)
	if code != exitFail {
		t.Errorf("exit %d, want %d; stderr %q", code, exitFail, errOut.String())
	}
	var last event
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
	}
	if last.Type != evSummary || len(last.Summary) != 1 {
		t.Fatalf("no summary last: %+v", last)
	}
	if last.Passed == nil || *last.Passed {
		t.Errorf("summary event: passed %v, want false", last.Passed)
	}
	s := last.Summary[0]
	if s.Passed || s.StepsOK == s.Steps {
		t.Errorf("vigil passed %v with %d of %d steps as they should", s.Passed, s.StepsOK, s.Steps)
	}
	if s.StaleProbes == 0 {
		t.Errorf("no probe to a removed address counted: %+v", *s)
	}
	failed := strings.Join(s.Failed, "\n")
	for _, want := range []string{"the change was not applied", "probes and"} {
		if !strings.Contains(failed, want) {
			t.Errorf("failed checks lack %q:\n%s", want, failed)
		}
	}
}

// The summary says that the detection times include passive checks, kept
// apart by vigil and on the probes' counters by the baseline, and what the
// count of the failing health check's step is.
func TestDefinitionsExplainDetection(t *testing.T) {
	text := strings.Join(definitions(newScale(3*time.Second, 10)), "\n")
	for _, want := range []string{"detected after", "passive checks", "one set of counters", "to check-failing", "never detected"} {
		if !strings.Contains(text, want) {
			t.Errorf("the definitions lack %q:\n%s", want, text)
		}
	}
}

// The plain summary prints a FAIL line for each step that did not show
// what it should.
func TestSummaryLinesFailSteps(t *testing.T) {
	s := &summary{World: "vigil", Sent: 10, Reached: 10, DetectedMs: 50}
	for i := range story {
		s.steps = append(s.steps, stepResult{title: "4/8 scale down", ok: i != 3, text: "the change was not applied"})
	}
	s.Steps, s.StepsOK = len(story), len(story)-1
	text := strings.Join(summaryLines(newScale(3*time.Second, 10), []*summary{s}), "\n")
	if !strings.Contains(text, "FAIL: step 4/8 scale down: the change was not applied") {
		t.Errorf("no FAIL line for the step:\n%s", text)
	}
	if strings.Contains(text, "every step") {
		t.Errorf("every step said to hold:\n%s", text)
	}
}

// pickTransport sends each request to the address b picks and reports its
// outcome.
type pickTransport struct {
	b    *balancer.Balancer
	base *http.Transport
}

func (t *pickTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	call, err := t.b.PickCall()
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Host, out.URL.Host = req.URL.Host, call.Address.HostPort()
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		call.Done(balancer.ConnFailure)
		return nil, err
	}
	call.Done(balancer.HTTPStatus(resp.StatusCode))
	return resp, nil
}

func (t *pickTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// blindTransport sends each request to the next address of the latest DNS
// set, whatever the checker says of it.
type blindTransport struct {
	src  *resolver.Source
	base *http.Transport
	n    atomic.Uint64
}

func (t *blindTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	set := t.src.Addresses()
	if len(set) == 0 {
		return nil, balancer.ErrNoHealthy
	}
	out := req.Clone(req.Context())
	out.Host = req.URL.Host
	out.URL.Host = set[t.n.Add(1)%uint64(len(set))].HostPort()
	return t.base.RoundTrip(out)
}

func (t *blindTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// newBlindWorld builds vigil's upstream, whose checker judges as it should,
// but sends the traffic past its verdicts.
func newBlindWorld(sc scale, dns *dnstest.Server, name string, bs []*backendtest.Backend) (*world, error) {
	w := newWorld("vigil", sc, dns, name, bs)
	u, err := vigil.New(vigilConfig(sc, name, w.port, dns.Addr()), vigil.WithBus(w.bus))
	if err != nil {
		return nil, err
	}
	w.view, w.checker = vigilView{c: u.Checker(), u: u}, u.Checker()
	w.client = &http.Client{Transport: &blindTransport{src: u.Source(), base: &http.Transport{}}, Timeout: sc.requestTimeout}
	w.finish(sc)
	return w, nil
}

// Traffic that reaches the backend whose health check fails after the
// checker marked it unhealthy is counted, and fails the last step and the
// run: the count is the backend's, not the checker's.
func TestTrafficToCheckFailingBackendFails(t *testing.T) {
	opts := storyOptions{duration: 3 * time.Second, speed: 1, rate: 80, json: true, newVigil: newBlindWorld}
	var out, errOut bytes.Buffer
	code := runStory(context.Background(), opts, &out, &errOut)
	if code != exitFail {
		t.Errorf("exit %d, want %d; stderr %q", code, exitFail, errOut.String())
	}
	s := summaryEvent(t, out.String()).Summary[0]
	if !s.CheckDetected {
		t.Fatalf("the checker never marked the backend whose health check fails unhealthy: %+v", *s)
	}
	if s.ToCheckFailing == 0 {
		t.Errorf("no request counted to the backend whose health check fails, although the traffic ignores verdicts: %+v", *s)
	}
	failed := strings.Join(s.Failed, "\n")
	for _, want := range []string{"requests reached the backend whose health check fails after it was marked unhealthy", "but"} {
		if !strings.Contains(failed, want) {
			t.Errorf("failed checks lack %q:\n%s", want, failed)
		}
	}
}
