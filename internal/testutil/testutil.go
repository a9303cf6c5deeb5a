// Package testutil holds what the tests of several packages need.
package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, failing the
// test when within has passed first. what says what was awaited.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer that is safe for one goroutine to write while
// others read it, as a logger or a running command's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FreePort returns a port of 127.0.0.1 that was free for both UDP and TCP
// when it returned, for a server started by a test that needs one port for
// both (a DNS server).
func FreePort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		_ = ln.Close()
		if err == nil {
			_ = pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("testutil: no free loopback port for UDP and TCP")
}

// FindDaemon returns the path of the program name (a server a test runs,
// such as named or unbound): from PATH, else /usr/sbin. pkg names the
// Debian package that installs it, for the error.
func FindDaemon(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	sbin := "/usr/sbin/" + name
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", fmt.Errorf("%s not found in PATH or /usr/sbin; install the %s package", name, pkg)
}

// RequireDaemon returns the path of the program name as FindDaemon does.
// When it is missing, the test is skipped, or fails when the environment
// variable env is "1" (CI sets it, so that CI never skips the test).
func RequireDaemon(t testing.TB, name, pkg, env string) string {
	t.Helper()
	path, err := FindDaemon(name, pkg)
	if err != nil {
		if os.Getenv(env) == "1" {
			t.Fatalf("%v (%s=1)", err, env)
		}
		t.Skipf("%v; skipping (set %s=1 to fail instead)", err, env)
	}
	return path
}
