package main

import (
	"log/slog"
	"os"
)

// openLog returns a logger writing vigil's own log, debug lines included,
// as text lines to the file at path (created or truncated), and the
// function that closes it. An empty path gives a logger that discards
// everything, as vigil's default does.
func openLog(path string) (*slog.Logger, func(), error) {
	if path == "" {
		return slog.New(slog.DiscardHandler), func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	l := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l, func() { _ = f.Close() }, nil
}
