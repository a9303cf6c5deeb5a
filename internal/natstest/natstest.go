// Package natstest runs a NATS server with JetStream in-process, on
// 127.0.0.1, for tests and demos: the fleet's tests and `demo -fleet` share
// verdicts through it. The server can be stopped and started again on the
// same port with the same store, as a real server that restarts. With
// WithUsers it requires a user and password and enforces each user's
// permissions, as a production server configured for a fleet does.
//
// A Server is safe for concurrent use.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyWithin bounds how long Start and Restart wait for the server to
// accept connections.
const readyWithin = 10 * time.Second

// User is a user the server accepts, with the subjects it may publish
// to and subscribe to (NATS wildcards allowed). A nil list allows
// everything; an empty one nothing.
type User struct {
	Name, Password     string
	Publish, Subscribe []string
}

// Option configures a Server.
type Option func(*options)

type options struct {
	users []User
}

// WithUsers makes the server accept only these users, each with its
// permissions. Without it anyone may connect and do anything.
func WithUsers(users ...User) Option {
	return func(o *options) { o.users = append(o.users, users...) }
}

// Server is an embedded NATS server with JetStream.
type Server struct {
	dir  string
	opts options

	mu   sync.Mutex
	port int
	srv  *server.Server // nil while stopped
}

// Start starts a server on 127.0.0.1 on a free port, keeping JetStream's
// store in dir (a test's t.TempDir()).
func Start(dir string, opts ...Option) (*Server, error) {
	if dir == "" {
		return nil, errors.New("natstest: no store directory")
	}
	s := &Server{dir: dir, port: -1}
	for _, o := range opts {
		o(&s.opts)
	}
	for _, u := range s.opts.users {
		if u.Name == "" {
			return nil, errors.New("natstest: a user without a name")
		}
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	o := &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
	}
	for _, u := range s.opts.users {
		su := &server.User{Username: u.Name, Password: u.Password}
		if u.Publish != nil || u.Subscribe != nil {
			su.Permissions = &server.Permissions{}
			if u.Publish != nil {
				su.Permissions.Publish = &server.SubjectPermission{Allow: allow(u.Publish)}
			}
			if u.Subscribe != nil {
				su.Permissions.Subscribe = &server.SubjectPermission{Allow: allow(u.Subscribe)}
			}
		}
		o.Users = append(o.Users, su)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("natstest: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyWithin) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natstest: server not ready within %v", readyWithin)
	}
	if s.port <= 0 {
		_, p, err := net.SplitHostPort(srv.Addr().String())
		if err != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			return fmt.Errorf("natstest: %w", err)
		}
		s.port, _ = strconv.Atoi(p)
	}
	s.srv = srv
	return nil
}

// allow returns subjects as an allow list: an empty list allows nothing,
// which the server spells as a subject nobody uses.
func allow(subjects []string) []string {
	if len(subjects) == 0 {
		return []string{"natstest.nothing"}
	}
	return subjects
}

// URL returns the server's client URL, "nats://127.0.0.1:port"; it stays
// the same across Stop and Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// Msgs returns how many messages the server has received from its
// clients and sent to them since it last started; zeros while stopped.
func (s *Server) Msgs() (in, out uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return 0, 0
	}
	v, err := s.srv.Varz(nil)
	if err != nil {
		return 0, 0
	}
	return uint64(v.InMsgs), uint64(v.OutMsgs)
}

// Stop shuts the server down, closing every client connection, and waits
// until it is down. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts a stopped server again on its port with its store:
// buckets and their values are back. Restarting a running server does
// nothing.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	return s.start()
}

// Running reports whether the server is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// Close stops the server for good.
func (s *Server) Close() { s.Stop() }
