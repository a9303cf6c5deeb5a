package backendtest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vigil-go/vigil/resolver"
)

// TCPListener accepts TCP connections on a loopback address and closes them
// at once, counting them.
type TCPListener struct {
	IP   netip.Addr
	Port uint16

	ln       net.Listener
	wg       sync.WaitGroup
	accepted atomic.Int64
}

// ListenTCP starts a TCPListener on ip:port (port 0: any free port).
func ListenTCP(ip netip.Addr, port uint16) (*TCPListener, error) {
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("backendtest: %s is not a loopback address", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	l := &TCPListener{IP: ip, Port: uint16(ln.Addr().(*net.TCPAddr).Port), ln: ln}
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
			_ = c.Close()
		}
	})
	return l, nil
}

// Accepted returns how many connections were accepted.
func (l *TCPListener) Accepted() int64 { return l.accepted.Load() }

// Address returns the listener as a resolver.Address for hostname.
func (l *TCPListener) Address(hostname string) resolver.Address {
	return resolver.Address{IP: l.IP, Port: l.Port, Hostname: hostname}
}

// Close stops the listener and waits for its goroutine.
func (l *TCPListener) Close() error {
	err := l.ln.Close()
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
