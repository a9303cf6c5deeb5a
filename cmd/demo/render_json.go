package main

import (
	"encoding/json"
	"io"
	"sync"
)

// jsonRenderer writes one JSON object per event, for tools; the summary is
// the last object, of type "summary".
type jsonRenderer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newJSONRenderer(out io.Writer) *jsonRenderer { return &jsonRenderer{enc: json.NewEncoder(out)} }

func (j *jsonRenderer) live() bool     { return false }
func (j *jsonRenderer) frame([]string) {}

func (j *jsonRenderer) event(e event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

func (j *jsonRenderer) summary(e event, _ []string) { j.event(e) }
