package health

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every goroutine a
// checker starts ends with its Run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
