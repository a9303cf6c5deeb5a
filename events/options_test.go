package events

import (
	"log/slog"
	"testing"

	"github.com/vigil-go/vigil/internal/testutil"
)

func TestOptions(t *testing.T) {
	var logs testutil.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name      string
		opts      []Option
		wantLimit int
		wantLog   *slog.Logger // nil: a logger that discards
	}{
		{"defaults", nil, DefaultQueueLimit, nil},
		{"nil logger and zero limit keep the defaults", []Option{WithLogger(nil), WithQueueLimit(0)}, DefaultQueueLimit, nil},
		{"negative limit keeps the default", []Option{WithQueueLimit(-3)}, DefaultQueueLimit, nil},
		{"set", []Option{WithLogger(logger), WithQueueLimit(7)}, 7, logger},
		{"last wins", []Option{WithQueueLimit(7), WithQueueLimit(9)}, 9, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.opts...)
			defer b.Close()
			if b.limit != tc.wantLimit {
				t.Errorf("limit = %d, want %d", b.limit, tc.wantLimit)
			}
			switch {
			case tc.wantLog != nil && b.log != tc.wantLog:
				t.Error("the logger given is not used")
			case tc.wantLog == nil && (b.log == nil || b.log.Handler() != slog.DiscardHandler):
				t.Error("the default logger does not discard")
			}
		})
	}
}
