package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// narrator prints what happens, one line per event, stamped with the time
// since the start: plain text, the same on a terminal or in a pipe, or
// (-json) one JSON object per line. Its methods are safe for concurrent use.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

// line is one JSON line.
type line struct {
	T       float64   `json:"t"`                 // seconds since the start
	Who     string    `json:"who,omitempty"`     // "vigil", "rebuild", a fleet client; empty for the story itself
	Text    string    `json:"text,omitempty"`    // what happened
	Summary []summary `json:"summary,omitempty"` // the story's last line
	OK      *bool     `json:"ok,omitempty"`      // the last line: whether vigil behaved (the exit status is 0)
}

func newNarrator(w io.Writer, json bool) *narrator {
	return &narrator{w: w, json: json, start: time.Now()}
}

// say prints one line about who.
func (n *narrator) say(who, format string, args ...any) {
	n.emit(line{Who: who, Text: fmt.Sprintf(format, args...)}, nil)
}

// emit prints l: as JSON, or its text; then, in plain mode, the lines of
// plain.
func (n *narrator) emit(l line, plain []string) {
	l.T = math.Round(time.Since(n.start).Seconds()*1000) / 1000
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.json {
		_ = json.NewEncoder(n.w).Encode(l)
		return
	}
	if l.Text != "" {
		fmt.Fprintf(n.w, "%6.2fs  %-8s %s\n", l.T, l.Who, l.Text)
	}
	if len(plain) > 0 {
		fmt.Fprintln(n.w, strings.Join(plain, "\n"))
	}
}

// ms rounds d to the millisecond for the narration.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
