package resolver

import (
	"slices"
	"time"

	"github.com/miekg/dns"
)

// State is what a Source knows at one moment, for an operator's status
// page: what it asks, what it got, how it fails and when it asks again.
// State returns a copy that the caller owns.
type State struct {
	Name    string   // Config.Name normalized, as Change.Name
	Types   []string // the query types asked: "A" and "AAAA" (as Family allows), or "SRV" then the families of its targets
	Running bool     // Run is running
	Version uint64   // of the set in effect: the last Change published, or the one found on the bus equal to it; 0 before
	// Addresses is the set in effect, as Addresses returns it: the last
	// answer's addresses and those holds keep (NXDomainHold,
	// HoldObsolete, the last addresses of parts that fail).
	Addresses []Address
	Answer    Answer // the last answer that gave records (in full or in part); its zero value before the first
	// Candidates are the names the configured name is tried as, in order,
	// as Address.Hostname carries them: more than one for a relative name
	// with a search list.
	Candidates []string
	// Following is the candidate that answered last and is asked first
	// from then on; empty before the first answer and after it stopped
	// existing (NXDOMAIN or NODATA).
	Following string
	Failures  int       // the resolutions in a row that published a Failure (failed in full or in part, or gave no records); 0 after one that did not
	Err       error     // the Err of the last Failure; it stays after a recovery (see ErrAt)
	ErrAt     time.Time // when the last Failure was published; zero if none was
	Next      time.Time // when the next resolution is due (ResolveNow may move it sooner); zero when Run is not running
}

// Answer is an answer with records that a Source got.
type Answer struct {
	Addresses []Address     // as the answer gave them, before holds, in canonical order
	At        time.Time     // when it arrived
	TTL       time.Duration // the smallest TTL the answer carried (along the CNAME chain, and of SRV targets), before the clamp to [MinTTL, MaxTTL]
	TTLLeft   time.Duration // what was left of TTL when State was called; 0 once it ran out
}

// status is what State reports beside the address set; it is guarded by
// Source.mu.
type status struct {
	answer     Answer // without TTLLeft
	candidates []string
	following  string
	failures   int
	err        error
	errAt      time.Time
	next       time.Time
}

// State returns what s knows now. It is cheap (a copy under a lock) and
// may be called from any goroutine at any time, before and during Run.
func (s *Source) State() State {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	a := st.answer
	a.Addresses = slices.Clone(a.Addresses)
	if !a.At.IsZero() {
		a.TTLLeft = max(a.TTL-now.Sub(a.At), 0)
	}
	return State{
		Name:       s.host,
		Types:      slices.Clone(s.types),
		Running:    s.running.Load(),
		Version:    s.version,
		Addresses:  slices.Clone(s.addrs),
		Answer:     a,
		Candidates: slices.Clone(st.candidates),
		Following:  st.following,
		Failures:   st.failures,
		Err:        st.err,
		ErrAt:      st.errAt,
		Next:       st.next,
	}
}

// setNext records when the next resolution is due.
func (s *Source) setNext(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.next = t
}

// setCandidates records the candidates of a new search list, of which none
// is followed yet.
func (s *Source) setCandidates(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.candidates, s.status.following = names, ""
}

// setFollowing records the candidate followed (a fully qualified name), or
// none ("").
func (s *Source) setFollowing(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.following = NormalizeName(name)
}

// answered records an answer with records, and the candidate that gave it.
func (s *Source) answered(a Answer, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.answer, s.status.following = a, NormalizeName(name)
}

// queryTypes returns the query types c asks, as State.Types names them. c
// is validated.
func (c Config) queryTypes() []string {
	var out []string
	if c.Type == SRV {
		out = append(out, "SRV")
	}
	for _, q := range c.families().qtypes() {
		out = append(out, dns.TypeToString[q])
	}
	return out
}
