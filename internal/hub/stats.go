package hub

import (
	"time"

	"github.com/onair/onair/internal/unit"
)

// statsWindow is how often rates are recomputed.
const statsWindow = 2 * time.Second

// streamStats measures what the publisher sends. Guarded by Stream.mu.
type streamStats struct {
	bytesIn uint64

	windowStart  time.Time
	windowBytes  [2]uint64 // video, audio
	windowFrames uint64

	videoKbps float64
	audioKbps float64
	fps       float64

	lastKeyDTS  time.Duration
	haveKey     bool
	keyInterval time.Duration
}

func (st *streamStats) reset(_ []*unit.Track) {
	st.windowStart = time.Time{}
	st.windowBytes = [2]uint64{}
	st.windowFrames = 0
	st.haveKey = false
}

func (st *streamStats) add(now time.Time, t *unit.Track, u *unit.Unit) {
	st.bytesIn += uint64(u.Size)
	if st.windowStart.IsZero() {
		st.windowStart = now
	}
	if t.IsVideo() {
		st.windowBytes[0] += uint64(u.Size)
		st.windowFrames++
		if u.Key {
			if st.haveKey {
				st.keyInterval = u.DTS - st.lastKeyDTS
			}
			st.lastKeyDTS = u.DTS
			st.haveKey = true
		}
	} else {
		st.windowBytes[1] += uint64(u.Size)
	}
	if el := now.Sub(st.windowStart); el >= statsWindow {
		sec := el.Seconds()
		st.videoKbps = float64(st.windowBytes[0]) * 8 / 1000 / sec
		st.audioKbps = float64(st.windowBytes[1]) * 8 / 1000 / sec
		st.fps = float64(st.windowFrames) / sec
		st.windowStart = now
		st.windowBytes = [2]uint64{}
		st.windowFrames = 0
	}
}

// Info is a snapshot of a stream for APIs and statistics.
type Info struct {
	Name       string
	StartedAt  time.Time
	Publishing bool
	Tracks     []*unit.Track

	// Measured over the last few seconds.
	VideoKbps float64
	AudioKbps float64
	FPS       float64

	// KeyframeInterval is the DTS distance between the last two video keyframes.
	KeyframeInterval time.Duration

	BytesIn uint64

	// BytesOut counts the bytes that outputs reported sending to viewers of the stream
	// (AddBytesOut), since the stream started.
	BytesOut uint64

	// Readers counts attached readers by kind.
	Readers map[string]int

	// Dropped counts units dropped by readers' full queues, by kind (attached readers only).
	Dropped map[string]uint64
}

// Info returns a snapshot of the stream.
func (s *Stream) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := Info{
		Name:             s.name,
		StartedAt:        s.startedAt,
		Publishing:       s.publisher != nil,
		Tracks:           s.tracks,
		VideoKbps:        s.stats.videoKbps,
		AudioKbps:        s.stats.audioKbps,
		FPS:              s.stats.fps,
		KeyframeInterval: s.stats.keyInterval,
		BytesIn:          s.stats.bytesIn,
		BytesOut:         s.bytesOut.Load(),
		Readers:          make(map[string]int),
		Dropped:          make(map[string]uint64),
	}
	for r := range s.readers {
		in.Readers[r.kind]++
		in.Dropped[r.kind] += r.Dropped()
	}
	return in
}

// AddBytesOut counts n bytes sent to a viewer of the stream (an RTMP player's writes,
// say). It is safe for concurrent use and never blocks.
func (s *Stream) AddBytesOut(n int) {
	if n > 0 {
		s.bytesOut.Add(uint64(n))
	}
}
