package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ttyRenderer redraws the live table in place, above a scrolling log of
// the latest events, with ANSI escapes.
type ttyRenderer struct {
	mu    sync.Mutex
	out   io.Writer
	table []string
	log   []string
	drawn int // lines drawn last time, to move back over
}

// ttyLogLines is how many events the log under the table shows.
const ttyLogLines = 16

// termWidth returns how many columns the terminal out has: $COLUMNS when
// set, else what the terminal says where it can be asked, else 80.
func termWidth(out io.Writer) int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	if f, ok := out.(*os.File); ok {
		if n := ttyColumns(f); n > 0 {
			return n
		}
	}
	return 80
}

func newTTYRenderer(out io.Writer) *ttyRenderer { return &ttyRenderer{out: out} }

func (t *ttyRenderer) live() bool { return true }

func (t *ttyRenderer) frame(table []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.table = table
	t.redraw()
}

func (t *ttyRenderer) event(e event) {
	if e.Type == evState {
		return // the table shows it
	}
	line := plainLine(e)
	switch e.Type {
	case evStep:
		line = ansiBold + strings.TrimPrefix(line, "\n") + ansiReset
	case evReset:
		line = ansiRed + line + ansiReset
	case evCheck:
		line = ansiGreen + line + ansiReset
	case evStart:
		line = ansiDim + line + ansiReset
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log = append(t.log, line)
	if len(t.log) > ttyLogLines {
		t.log = t.log[len(t.log)-ttyLogLines:]
	}
	// The next frame, at most 200ms away, shows it.
}

func (t *ttyRenderer) summary(_ event, text []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.redraw()
	for _, l := range text {
		switch {
		case strings.HasPrefix(l, "OK:"):
			l = ansiGreen + l + ansiReset
		case strings.HasPrefix(l, "FAIL:"):
			l = ansiRed + l + ansiReset
		}
		fmt.Fprintln(t.out, l)
	}
}

// redraw moves back to the top of what it drew last and draws the table and
// the log again, clearing each line. Every line is cut short of the
// terminal's width, so that none wraps: each takes one row, and moving back
// over the rows drawn lands on the first.
func (t *ttyRenderer) redraw() {
	width := max(termWidth(t.out)-1, 1)
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", t.drawn)
	}
	lines := append(append(append([]string(nil), t.table...), ""), t.log...)
	for _, l := range lines {
		b.WriteString(cut(l, width))
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	t.drawn = len(lines)
	_, _ = io.WriteString(t.out, b.String())
}

// cut shortens s to n visible characters, not counting ANSI escapes.
func cut(s string, n int) string {
	visible, inEsc := 0, false
	for i, r := range s {
		switch {
		case inEsc:
			inEsc = r != 'm'
		case r == '\x1b':
			inEsc = true
		default:
			visible++
			if visible > n {
				return s[:i] + ansiReset
			}
		}
	}
	return s
}
