package backendtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vigil-go/vigil/resolver"
)

// TCPMode is what a TCPListener does with the connections it accepts.
type TCPMode int

const (
	// CloseAtOnce closes each accepted connection at once (the zero value).
	CloseAtOnce TCPMode = iota
	// ResetAtOnce resets each accepted connection (TCP RST) at once.
	ResetAtOnce
	// Silent holds each accepted connection open, reading and discarding
	// what the peer sends and never answering, until the peer closes it or
	// the listener is closed.
	Silent
)

// TCPListener accepts TCP connections on a loopback address, counting them,
// and closes, resets or silently holds them according to its mode.
type TCPListener struct {
	IP   netip.Addr
	Port uint16

	ln       net.Listener
	mode     TCPMode
	wg       sync.WaitGroup
	accepted atomic.Int64

	mu     sync.Mutex
	held   map[net.Conn]struct{}
	closed bool
}

// ListenTCP starts a TCPListener on ip:port (port 0: any free port) that
// closes what it accepts at once.
func ListenTCP(ip netip.Addr, port uint16) (*TCPListener, error) {
	return ListenTCPMode(ip, port, CloseAtOnce)
}

// ListenTCPMode starts a TCPListener on ip:port (port 0: any free port)
// treating what it accepts according to mode.
func ListenTCPMode(ip netip.Addr, port uint16, mode TCPMode) (*TCPListener, error) {
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("backendtest: %s is not a loopback address", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	l := &TCPListener{IP: ip, Port: uint16(ln.Addr().(*net.TCPAddr).Port), ln: ln, mode: mode,
		held: make(map[net.Conn]struct{})}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			l.accepted.Add(1)
			l.handle(c)
		}
	})
	return l, nil
}

// handle treats one accepted connection.
func (l *TCPListener) handle(c net.Conn) {
	switch l.mode {
	case ResetAtOnce:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	case Silent:
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.held[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_, _ = io.Copy(io.Discard, c)
			l.mu.Lock()
			delete(l.held, c)
			l.mu.Unlock()
			_ = c.Close()
		}()
	default:
		_ = c.Close()
	}
}

// Accepted returns how many connections were accepted.
func (l *TCPListener) Accepted() int64 { return l.accepted.Load() }

// Open returns how many accepted connections a Silent listener holds.
func (l *TCPListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Address returns the listener as a resolver.Address for hostname.
func (l *TCPListener) Address(hostname string) resolver.Address {
	return resolver.Address{IP: l.IP, Port: l.Port, Hostname: hostname}
}

// Close stops the listener, closes the connections it holds and waits for
// its goroutines.
func (l *TCPListener) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.held {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// RefusedPort returns a port on ip on which nothing listens (it was free a
// moment ago), so connecting to it is refused.
func RefusedPort(ip netip.Addr) (uint16, error) {
	if !ip.IsLoopback() {
		return 0, fmt.Errorf("backendtest: %s is not a loopback address", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	return port, ln.Close()
}
