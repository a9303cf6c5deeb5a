package natstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A value put before a stop is there after the restart, on the same URL,
// and a client that kept its connection reconnects by itself.
func TestRestartKeepsStoreAndURL(t *testing.T) {
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := s.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	for nc.IsConnected() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.URL() != url {
		t.Fatalf("URL %s after the restart, was %s", s.URL(), url)
	}
	for !nc.IsConnected() {
		if ctx.Err() != nil {
			t.Fatal("the client did not reconnect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("after the restart: %v, %v", e, err)
	}
}

// With users, the server refuses a client without the right password and
// enforces each user's permissions: a publish outside them is refused
// (reported to the client as a permissions violation), one inside is
// delivered; Msgs counts what the server received and sent.
func TestUsersAndPermissions(t *testing.T) {
	s, err := Start(t.TempDir(), WithUsers(User{Name: "u", Password: "p", Publish: []string{"ok.>"}, Subscribe: []string{"ok.>"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if nc, err := nats.Connect(s.URL(), nats.UserInfo("u", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}
	if _, err := Start(t.TempDir(), WithUsers(User{Password: "p"})); err == nil {
		t.Fatal("a user without a name was accepted")
	}
	refused := make(chan error, 1)
	nc, err := nats.Connect(s.URL(), nats.UserInfo("u", "p"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case refused <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("ok.x")
	if err != nil {
		t.Fatal(err)
	}
	in0, out0 := s.Msgs()
	if err := nc.Publish("ok.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("an allowed publish: %v, %v", m, err)
	}
	if err := nc.Publish("no.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("a refused publish: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a publish outside the permissions was not refused")
	}
	if in, out := s.Msgs(); in < in0+1 || out < out0+1 {
		t.Errorf("Msgs: in %d→%d, out %d→%d, want each to grow", in0, in, out0, out)
	}
}
