package resolver

import "time"

// epoch anchors versionClock: the wall clock when the package was
// initialised. It is never modified.
var epoch = time.Now()

// versionClock returns nanoseconds since the Unix epoch, advanced by the
// monotonic clock since process start, so that it never goes backwards
// within a process even when the wall clock does.
//
// Change versions are at least versionClock(): a new Source for a name
// therefore starts above every version an earlier Source for that name
// published in this process, even on another bus, and a restarted process
// starts above the previous one's as long as the wall clocks agree.
func versionClock() uint64 {
	return uint64(epoch.UnixNano()) + uint64(time.Since(epoch))
}
