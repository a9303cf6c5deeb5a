package resolver

import (
	"sync"
	"time"
)

// defaultNoEDNSFor is how long a server that rejected EDNS0 is asked
// without it before EDNS0 is tried again (it may have been upgraded, or the
// middlebox in front of it replaced).
const defaultNoEDNSFor = 10 * time.Minute

// ednsMemory remembers the servers that rejected EDNS0, and until when they
// are asked without it. It is safe for concurrent use; its zero value is
// empty and ready.
type ednsMemory struct {
	mu    sync.Mutex
	until map[string]time.Time // server -> end of its plain-DNS period
}

// rejects reports whether server is to be asked without EDNS0 at now. An
// expired entry is forgotten, so the map holds at most the servers that
// rejected EDNS0 within the period.
func (e *ednsMemory) rejects(server string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.until[server]
	if ok && !now.Before(t) {
		delete(e.until, server)
		return false
	}
	return ok
}

// remember makes server be asked without EDNS0 until t.
func (e *ednsMemory) remember(server string, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.until == nil {
		e.until = make(map[string]time.Time)
	}
	e.until[server] = t
}
