package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// On a narrow terminal no line of the live view reaches the last column,
// so none wraps, and each redraw moves back over exactly the rows drawn.
func TestTTYFitsNarrowTerminal(t *testing.T) {
	t.Setenv("COLUMNS", "40")
	var out bytes.Buffer
	r := newTTYRenderer(&out)
	long := ansiBold + strings.Repeat("x", 30) + ansiReset + strings.Repeat("y", 60)
	r.event(event{Type: evDNS, World: "vigil", Text: strings.Repeat("z", 100)})
	r.frame([]string{long, "short", long})
	first := out.Len()
	r.frame([]string{long})

	esc := regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	for _, l := range strings.Split(esc.ReplaceAllString(out.String(), ""), "\n") {
		if n := len([]rune(l)); n >= 40 {
			t.Errorf("a line of %d columns on a terminal of 40: %q", n, l)
		}
	}
	// table (3) + blank + log (1)
	if up := fmt.Sprintf("\x1b[%dF", 5); !strings.HasPrefix(out.String()[first:], up) {
		t.Errorf("the second frame does not move up 5 rows: %q", out.String()[first:])
	}
}
