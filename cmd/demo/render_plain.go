package main

import (
	"fmt"
	"io"
	"sync"
)

// plainRenderer prints one line per event, without escape codes: for
// pipes, files and CI logs.
type plainRenderer struct {
	mu  sync.Mutex
	out io.Writer
}

func newPlainRenderer(out io.Writer) *plainRenderer { return &plainRenderer{out: out} }

func (p *plainRenderer) live() bool     { return false }
func (p *plainRenderer) frame([]string) {}

func (p *plainRenderer) event(e event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.out, plainLine(e))
}

func (p *plainRenderer) summary(_ event, text []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range text {
		fmt.Fprintln(p.out, l)
	}
}

// plainLine formats an event as one line of text.
func plainLine(e event) string {
	switch e.Type {
	case evStart:
		return e.Text
	case evStep:
		return fmt.Sprintf("\n%6.2fs  == %s ==", e.T, e.Text)
	case evState:
		return fmt.Sprintf("%6.2fs  %-8s state (share of traffic in this step): %s", e.T, e.World, e.Text)
	case evCheck:
		return fmt.Sprintf("%6.2fs  %-8s => %s", e.T, e.World, e.Text)
	}
	return fmt.Sprintf("%6.2fs  %-8s %s", e.T, e.World, e.Text)
}
