package main

import (
	"io"
	"os"
)

// renderer shows a run: events as they happen, a live table where the
// output is a terminal, and the summary at the end. Its methods are safe
// for concurrent use.
type renderer interface {
	event(e event)
	// live reports whether the renderer draws the table (frame).
	live() bool
	// frame replaces the live table.
	frame(table []string)
	// summary shows the final event; text is its human-readable form.
	summary(e event, text []string)
}

// newRenderer picks the renderer for out: JSON lines when asked, the live
// table on a terminal, plain lines otherwise.
func newRenderer(out io.Writer, asJSON bool) renderer {
	switch {
	case asJSON:
		return newJSONRenderer(out)
	case isTerminal(out):
		return newTTYRenderer(out)
	default:
		return newPlainRenderer(out)
	}
}

// isTerminal reports whether out is a character device, such as a terminal.
func isTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
