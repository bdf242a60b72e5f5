package rtmp

import "time"

// timeline turns the timestamps of a publisher's messages, RTMP's 32-bit milliseconds
// that wrap every 2^32 ms (49.7 days), into a continuous 64-bit timeline: each timestamp
// is placed within ±2^31 ms of the previous one. Without it a stream ends at the wrap
// (the hub refuses timestamps that go backwards). Audio and video share it, as they share
// RTMP's clock; their small interleaving differences are negative steps, kept as such.
type timeline struct {
	started bool
	last    uint32 // the last raw timestamp
	ms      int64  // its place on the continuous timeline
}

// unwrap maps the timestamp of a message (as gortmplib decodes it: in [0, 2^32) ms) to
// the continuous timeline.
func (t *timeline) unwrap(d time.Duration) time.Duration {
	raw := uint32(d / time.Millisecond)
	if !t.started {
		t.started = true
		t.ms = int64(raw)
	} else {
		t.ms += int64(int32(raw - t.last))
	}
	t.last = raw
	return time.Duration(t.ms) * time.Millisecond
}
