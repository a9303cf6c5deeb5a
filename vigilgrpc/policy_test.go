package vigilgrpc_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/health"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// loaders runs n goroutines making RPCs on cc until stop is closed; before
// each RPC it asks unhealthy whether the watched backend is held unhealthy
// at that moment, and counts the RPCs picked after that which it served.
type loaders struct {
	wg        sync.WaitGroup
	once      sync.Once
	stop      chan struct{}
	rpcs      atomic.Int64
	errs      atomic.Int64
	violating atomic.Int64 // RPCs served by the watched backend after it was held unhealthy
}

func startLoaders(cc *grpc.ClientConn, n int, watched netip.Addr, unhealthy func() bool) *loaders {
	l := &loaders{stop: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				after := unhealthy()
				ip, err := call(context.Background(), cc)
				l.rpcs.Add(1)
				if err != nil {
					l.errs.Add(1)
					continue
				}
				if after && ip == watched {
					l.violating.Add(1)
				}
			}
		})
	}
	return l
}

// halt stops the loaders and waits for them; it may be called again.
func (l *loaders) halt() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// more waits until the loaders made n more RPCs.
func (l *loaders) more(t *testing.T, n int64) {
	t.Helper()
	target := l.rpcs.Load() + n
	testutil.Eventually(t, 10*time.Second, "more RPCs", func() bool { return l.rpcs.Load() >= target })
}

// No RPC picked after vigil holds a backend unhealthy reaches it: not
// while it stays in the address set, not while it is out of it, not when
// it comes back (its verdict is remembered).
func TestNoRPCAfterUnhealthy(t *testing.T) {
	t.Run("probes", func(t *testing.T) { noRPCAfterUnhealthy(t, "127.0.69.1", false) })
	t.Run("health watch", func(t *testing.T) { noRPCAfterUnhealthy(t, "127.0.69.11", true) })
}

func noRPCAfterUnhealthy(t *testing.T, first string, watch bool) {
	d := dnsServer(t)
	bs := startBackends(t, first, 3, backendOpts{})
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, template(d), vigilgrpc.WithHealthWatch(watch))
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc := dial(t, b, target)
	waitServed(t, cc, bs)
	chk := upstream(t, b, target).Checker()
	bad := bs[1]
	a := bad.Address("api.internal")
	l := startLoaders(cc, 4, bad.IP, func() bool { return chk.Status(a) == health.Unhealthy })
	defer l.halt()

	testutil.Eventually(t, 5*time.Second, "the backend to serve RPCs under load", func() bool { return bad.RPCs() > 20 })
	bad.SetServing(false)
	testutil.Eventually(t, 5*time.Second, "vigil to hold the backend unhealthy", func() bool { return chk.Status(a) == health.Unhealthy })
	atUnhealthy := bad.RPCs()
	l.more(t, 200)

	// The address leaves the set and comes back, still NOT_SERVING.
	if err := d.SetA("api.internal", 1, bs[0].IP.String(), bs[2].IP.String()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the address to leave", func() bool { _, ok := chk.Target(a); return !ok })
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the address to return", func() bool { _, ok := chk.Target(a); return ok })
	if s := chk.Status(a); s != health.Unhealthy {
		t.Fatalf("the returning address is %v, want its remembered Unhealthy", s)
	}
	l.more(t, 200)
	l.halt()

	if n := l.violating.Load(); n != 0 {
		t.Fatalf("%d RPCs picked after vigil held the backend unhealthy reached it", n)
	}
	if n := l.errs.Load(); n != 0 {
		t.Fatalf("%d of %d RPCs failed", n, l.rpcs.Load())
	}
	// Only RPCs picked before the verdict may have arrived after it.
	t.Logf("%d RPCs in all; the backend served %d after the verdict (picked before it)", l.rpcs.Load(), bad.RPCs()-atUnhealthy)

	// It serves again once it is healthy.
	bad.SetServing(true)
	testutil.Eventually(t, 5*time.Second, "the backend to serve again", func() bool {
		ip, err := call(context.Background(), cc)
		return err == nil && ip == bad.IP
	})
}

// Without a healthy target, RPCs fail at once; wait-for-ready ones (here
// from the service config) wait for a healthy target.
func TestNoHealthyTarget(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.70.1", 2, backendOpts{})
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, template(d), vigilgrpc.WithServiceConfig(
		`{"methodConfig":[{"name":[{"service":"grpc.testing.TestService","method":"EmptyCall"}],"waitForReady":true}]}`))
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc := dial(t, b, target)
	waitServed(t, cc, bs)
	chk := upstream(t, b, target).Checker()
	for _, s := range bs {
		s.SetServing(false)
	}
	testutil.Eventually(t, 5*time.Second, "every target unhealthy", func() bool { return len(chk.Healthy()) == 0 })

	// StreamingOutputCall has no method config: it fails fast.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no healthy address") {
		t.Fatalf("RPC without a healthy target: %v, want UNAVAILABLE: no healthy address", err)
	}

	// EmptyCall waits for ready, by the service config given.
	done := make(chan error, 1)
	go func() { _, err := call(context.Background(), cc); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a wait-for-ready RPC ended without a healthy target: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	bs[0].SetServing(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait-for-ready RPC did not go once a target was healthy")
	}
}

// RPC outcomes count in the passive verdict of the address that served
// them, streams as unary RPCs.
func TestPassiveOutcomes(t *testing.T) {
	for i, tc := range []struct {
		name    string
		code    codes.Code
		push    int64 // grpc-retry-pushback-ms
		stream  bool
		ejected bool
		reason  string
		opts    []vigilgrpc.Option
	}{
		{"UNAVAILABLE is a connection failure", codes.Unavailable, 0, false, true, "connection failure", nil},
		{"UNAVAILABLE of a stream", codes.Unavailable, 0, true, true, "connection failure", nil},
		{"DEADLINE_EXCEEDED is a timeout", codes.DeadlineExceeded, 0, false, true, "timeout", nil},
		{"INTERNAL is a failure", codes.Internal, 0, false, true, "INTERNAL", nil},
		{"NOT_FOUND is the application's answer", codes.NotFound, 0, false, false, "", nil},
		{"UNKNOWN is the application's answer", codes.Unknown, 0, false, false, "", nil},
		{"pushback ejects", codes.ResourceExhausted, 60_000, false, true, "", nil},
		{"UNKNOWN as a failure code", codes.Unknown, 0, false, true, "UNKNOWN", []vigilgrpc.Option{vigilgrpc.WithFailureCodes(codes.Unknown)}},
		{"UNAVAILABLE keeps its meaning among failure codes", codes.Unavailable, 0, false, true, "connection failure",
			[]vigilgrpc.Option{vigilgrpc.WithFailureCodes(codes.Unavailable)}},
		{"CANCELLED reports nothing", codes.Canceled, 0, false, false, "", nil},
		{"no failure codes", codes.Internal, 0, false, false, "", []vigilgrpc.Option{vigilgrpc.WithFailureCodes()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dnsServer(t)
			bs := startBackends(t, "127.0.71."+itoa(uint16(i+1)), 1, backendOpts{})
			if err := d.SetA("api.internal", 1, bs[0].IP.String()); err != nil {
				t.Fatal(err)
			}
			b := newBuilder(t, template(d), tc.opts...)
			target := "vigil:///api.internal:" + itoa(bs[0].Port)
			cc := dial(t, b, target)
			waitServed(t, cc, bs)
			chk := upstream(t, b, target).Checker()
			a := bs[0].Address("api.internal")
			before, _ := chk.Target(a)
			bs[0].fail(tc.code)
			bs[0].push.Store(tc.push)
			for range 10 { // above every default passive threshold
				var err error
				if tc.stream {
					err = streamCall(cc)
				} else {
					_, err = call(context.Background(), cc)
				}
				if status.Code(err) != tc.code {
					break // ejected: no healthy target left
				}
			}
			tg, _ := chk.Target(a)
			if tc.code == codes.Canceled && tg.PassiveCounts != before.PassiveCounts {
				t.Fatalf("cancelled RPCs counted in the passive verdict: %+v, before %+v", tg.PassiveCounts, before.PassiveCounts)
			}
			if got := tg.Passive == health.Unhealthy; got != tc.ejected {
				t.Fatalf("passive verdict %v (reason %q), ejected want %v", tg.Passive, tg.Reason, tc.ejected)
			}
			// A passing probe ends an ejection early; the next failure ejects
			// again "on probation".
			if tc.reason != "" && !strings.HasPrefix(tg.Reason, tc.reason) {
				t.Fatalf("reason %q, want %q", tg.Reason, tc.reason)
			}
			if tc.push > 0 {
				if left := time.Until(tg.EjectedUntil); left < 50*time.Second || left > 60*time.Second {
					t.Fatalf("ejected for %v more, want about the 60s pushback", left)
				}
			}
		})
	}
}

// streamCall makes one StreamingOutputCall and returns its status.
func streamCall(cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := testgrpc.NewTestServiceClient(cc).StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err != nil {
			if status.Code(err) == codes.OK {
				return nil
			}
			return err
		}
	}
}

// Under ConsistentHash, RPCs with one hash key go to one backend.
func TestHashKey(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.72.1", 3, backendOpts{})
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	tmpl := template(d)
	tmpl.Balancer = []balancer.Option{balancer.WithPolicy(balancer.ConsistentHash)}
	cc := dial(t, newBuilder(t, tmpl), "vigil:///api.internal:"+itoa(bs[0].Port))
	waitServed(t, cc, bs)
	for _, key := range []string{"alice", "bob", "carol", "dave"} {
		ctx := vigilgrpc.ContextWithHashKey(context.Background(), key)
		first, err := call(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if ip, err := call(ctx, cc); err != nil || ip != first {
				t.Fatalf("key %q went to %v, then %v (%v)", key, first, ip, err)
			}
		}
	}
}

// The health watch turns a server's NOT_SERVING into the target's active
// verdict without waiting for a probe, and its SERVING back.
func TestHealthWatch(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.73.1", 2, backendOpts{})
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	tmpl := template(d)
	tmpl.Health.Active.Healthy.Interval = time.Hour // one probe at the start, then none
	tmpl.Health.Active.Unhealthy.Interval = time.Hour
	b := newBuilder(t, tmpl)
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	cc := dial(t, b, target)
	waitServed(t, cc, bs)
	chk := upstream(t, b, target).Checker()
	a := bs[1].Address("api.internal")
	testutil.Eventually(t, 2*time.Second, "the first probe of each target", func() bool { return chk.Stats().ProbesCompleted >= 2 })
	probes := chk.Stats().ProbesStarted

	bs[1].SetServing(false)
	testutil.Eventually(t, 2*time.Second, "the watch to report NOT_SERVING", func() bool { return chk.Status(a) == health.Unhealthy })
	if tg, _ := chk.Target(a); !strings.HasPrefix(tg.Reason, "health watch: ") || !strings.Contains(tg.Reason, "NOT_SERVING") {
		t.Fatalf("reason %q, want the health watch's NOT_SERVING", tg.Reason)
	}
	bs[1].SetServing(true)
	testutil.Eventually(t, 2*time.Second, "the watch to report SERVING", func() bool { return chk.Status(a) == health.Healthy })
	if n := chk.Stats().ProbesStarted - probes; n != 0 {
		t.Fatalf("%d probes ran: the verdicts were not the watch's", n)
	}
}

// With new targets unhealthy until a probe passes, no RPC reaches a
// backend that never passed one, from the first RPC on.
func TestInitialUnhealthy(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.74.1", 2, backendOpts{})
	bs[1].SetServing(false)
	if err := d.SetA("api.internal", 1, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	tmpl := template(d)
	tmpl.Health.Initial = health.Unhealthy
	cc := dial(t, newBuilder(t, tmpl), "vigil:///api.internal:"+itoa(bs[0].Port))
	for range 50 {
		if ip, err := call(context.Background(), cc); err != nil || ip != bs[0].IP {
			t.Fatalf("RPC: %v %v", ip, err)
		}
	}
	if n := bs[1].RPCs(); n != 0 {
		t.Fatalf("%d RPCs reached the backend that never passed a probe", n)
	}
}

// The vigil policy with another resolver fails RPCs with a clear status.
func TestPolicyWithoutVigilResolver(t *testing.T) {
	bs := startBackends(t, "127.0.75.1", 1, backendOpts{})
	cc, err := grpc.NewClient("passthrough:///"+bs[0].IP.String()+":"+itoa(bs[0].Port),
		grpc.WithTransportCredentials(insecureCreds()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+vigilgrpc.PolicyName+`":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = call(context.Background(), cc, grpc.WaitForReady(true))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "serves only targets of a vigilgrpc.Builder") {
		t.Fatalf("RPC error %v, want UNAVAILABLE naming the missing resolver", err)
	}
	if n := bs[0].RPCs(); n != 0 {
		t.Fatalf("%d RPCs reached the backend", n)
	}
}
