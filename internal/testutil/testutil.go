// Package testutil holds what the tests of several packages need.
package testutil

import (
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
