package vigilgrpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-go/vigil/balancer"
	"github.com/vigil-go/vigil/events"
	"github.com/vigil-go/vigil/internal/testutil"
	"github.com/vigil-go/vigil/vigilgrpc"
)

// breaker dials TCP connections of which, once armed, the first to write
// an HTTP/2 HEADERS frame (an RPC's stream opening) fails that write and
// closes: the connection breaks between the pick and the send, and not a
// byte of the RPC leaves.
type breaker struct {
	armed atomic.Bool
	broke atomic.Int64
}

func (b *breaker) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &breakingConn{Conn: c, b: b}, nil
}

type breakingConn struct {
	net.Conn
	b *breaker
}

func (c *breakingConn) Write(p []byte) (int, error) {
	if opensStream(p) && c.b.armed.CompareAndSwap(true, false) {
		_ = c.Conn.Close()
		c.b.broke.Add(1)
		return 0, errors.New("broken by the test")
	}
	return c.Conn.Write(p)
}

// clientPreface opens every HTTP/2 client connection.
var clientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// opensStream reports whether p, whole HTTP/2 frames (after the client
// preface, if it starts with it), holds a HEADERS frame of a stream.
func opensStream(p []byte) bool {
	p = bytes.TrimPrefix(p, clientPreface)
	for len(p) >= 9 {
		n := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
		if p[3] == 0x1 && binary.BigEndian.Uint32(p[5:9])&0x7fffffff != 0 {
			return true
		}
		if len(p) < 9+n {
			break
		}
		p = p[9+n:]
	}
	return false
}

// RPCs whose connection breaks between the pick and the send never
// reached a server: whatever grpc-go then does (fail the RPC with
// UNAVAILABLE, or retry it transparently), they count neither in the
// passive verdict nor, under PeakEWMA, as a latency sample (no Result:
// a Call's end publishes one as it takes the sample).
func TestUnsentRPCsAreNoOutcome(t *testing.T) {
	d := dnsServer(t)
	bs := startBackends(t, "127.0.103.1", 1, backendOpts{})
	if err := d.SetA("api.internal", 60, ips(bs)...); err != nil {
		t.Fatal(err)
	}
	tmpl := template(d)
	tmpl.Balancer = []balancer.Option{balancer.WithPolicy(balancer.PeakEWMA)}
	b := newBuilder(t, tmpl, vigilgrpc.WithHealthWatch(false)) // no Watch stream to break instead
	target := "vigil:///api.internal:" + itoa(bs[0].Port)
	br := &breaker{}
	cc := dial(t, b, target, grpc.WithContextDialer(br.dial))
	waitServed(t, cc, bs)
	chk := upstream(t, b, target).Checker()
	a := bs[0].Address("api.internal")

	var mu sync.Mutex
	var results []balancer.Outcome
	unsubscribe := events.Subscribe(b.Bus(), balancer.ResultTopic("api.internal"), func(r balancer.Result) {
		mu.Lock()
		results = append(results, r.Outcome)
		mu.Unlock()
	})
	defer unsubscribe()
	const rounds = 3
	served := 0
	for range rounds {
		before, _ := chk.Target(a)
		br.armed.Store(true)
		_, err := call(context.Background(), cc)
		if err == nil {
			served++ // retried transparently on a new connection
		} else if status.Code(err) != codes.Unavailable {
			t.Fatalf("an RPC whose connection broke before it left: %v; want UNAVAILABLE or a transparent retry", err)
		}
		if br.armed.Load() {
			t.Fatal("no connection broke: the test tests nothing")
		}
		after, _ := chk.Target(a)
		if after.PassiveCounts.TCPFailures != before.PassiveCounts.TCPFailures || after.Passive != before.Passive {
			t.Fatalf("an RPC that never left counted in the passive verdict: %+v (%v), before %+v (%v)",
				after.PassiveCounts, after.Passive, before.PassiveCounts, before.Passive)
		}
		// Served again once the connection is back: the last of these
		// RPCs' Results, in order, closes the round.
		testutil.Eventually(t, 5*time.Second, "the backend to serve again", func() bool {
			_, err := call(context.Background(), cc)
			if err == nil {
				served++
			}
			return err == nil
		})
	}
	testutil.Eventually(t, 5*time.Second, "the served RPCs' Results", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) >= served
	})
	mu.Lock()
	defer mu.Unlock()
	for _, o := range results {
		if o != balancer.Success {
			t.Fatalf("Results %v of %d served RPCs: an RPC that never left was reported", results, served)
		}
	}
	if len(results) != served {
		t.Fatalf("%d Results of %d served RPCs: a pick that never left was reported", len(results), served)
	}
}
