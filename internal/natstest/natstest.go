// Package natstest runs a NATS server with JetStream in-process, on
// 127.0.0.1, for tests and demos: the fleet's tests and `demo -fleet` share
// verdicts through it. The server can be stopped and started again on the
// same port with the same store, as a real server that restarts.
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

// Server is an embedded NATS server with JetStream.
type Server struct {
	dir string

	mu   sync.Mutex
	port int
	srv  *server.Server // nil while stopped
}

// Start starts a server on 127.0.0.1 on a free port, keeping JetStream's
// store in dir (a test's t.TempDir()).
func Start(dir string) (*Server, error) {
	if dir == "" {
		return nil, errors.New("natstest: no store directory")
	}
	s := &Server{dir: dir, port: -1}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	srv, err := server.NewServer(&server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
	})
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

// URL returns the server's client URL, "nats://127.0.0.1:port"; it stays
// the same across Stop and Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
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
