package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/unit"
)

// Stream is one live channel: its current tracks, the last GOP, the attached readers
// and, while someone publishes, its publisher. A Stream outlives a publisher that
// drops by up to the registry's grace period, so that a reconnect continues it.
type Stream struct {
	name string
	reg  *Registry

	mu        sync.Mutex
	tracks    []*unit.Track
	primary   int // index of the track whose key units start a GOP (video if any)
	sessions  int
	publisher *Publisher
	readers   map[*Reader]struct{}
	gop       []*unit.Unit
	gopBytes  int
	grace     *time.Timer
	ended     bool
	startedAt time.Time
	source    Source

	// timeline
	offset    time.Duration   // added to the current publisher's timestamps
	offsetSet bool            // offset chosen for the current session
	lastDTS   []time.Duration // per track, rebased
	seenKey   bool            // the current session has sent its first video key unit
	maxDTS    time.Duration   // highest rebased DTS written so far, all sessions

	stats    streamStats
	bytesOut atomic.Uint64
}

// Source is where a stream's media comes from.
type Source int

// Sources of a stream.
const (
	// SourceIngest is a broadcaster publishing to this node: the channel is live here.
	SourceIngest Source = iota
	// SourceRelay is a stream pulled from its origin node in a cluster.
	SourceRelay
	// SourceDerived is made on this node from another stream (a transcoded rendition).
	// Its units keep their timestamps (the other stream's timeline) instead of starting
	// at 0, unless they would go back before an earlier session's.
	SourceDerived
)

// String returns "ingest", "relay" or "derived".
func (s Source) String() string {
	switch s {
	case SourceRelay:
		return "relay"
	case SourceDerived:
		return "derived"
	}
	return "ingest"
}

// Source returns where the stream's media comes from (set when it was created).
func (s *Stream) Source() Source { return s.source }

// Name returns the stream's name (the channel's username).
func (s *Stream) Name() string { return s.name }

// Tracks returns the tracks of the current (or last) publisher session.
func (s *Stream) Tracks() []*unit.Track {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tracks
}

// Publishing reports whether a publisher is attached (false during the grace window).
func (s *Stream) Publishing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publisher != nil
}

// Ended reports whether the stream has ended.
func (s *Stream) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// AddReader attaches a reader of the given kind ("rtmp", "hls", ...). Its queue starts
// with the current tracks and the cached GOP, so that playback can start at once.
func (s *Stream) AddReader(kind string) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, ErrStreamEnded
	}
	r := &Reader{
		stream:      s,
		kind:        kind,
		max:         s.reg.QueueSize,
		notify:      make(chan struct{}, 1),
		kindDropped: s.reg.droppedCounter(kind),
	}
	r.push(Event{Tracks: s.tracks}, true)
	for _, u := range s.gop {
		r.push(Event{Unit: u}, s.isResync(u))
	}
	s.readers[r] = struct{}{}
	return r, nil
}

// Readers returns the number of attached readers by kind.
func (s *Stream) Readers() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int)
	for r := range s.readers {
		m[r.kind]++
	}
	return m
}

func (s *Stream) removeReader(r *Reader) {
	s.mu.Lock()
	delete(s.readers, r)
	s.mu.Unlock()
}

func (s *Stream) isResync(u *unit.Unit) bool {
	return u.Track == s.primary && u.Key
}

// startSession begins a publisher session. Called with s.mu held.
func (s *Stream) startSession(p *Publisher, tracks []*unit.Track) {
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.publisher = p
	s.tracks = tracks
	s.primary = 0
	for i, t := range tracks {
		if t.IsVideo() {
			s.primary = i
			break
		}
	}
	s.lastDTS = make([]time.Duration, len(tracks))
	for i := range s.lastDTS {
		s.lastDTS[i] = -1 << 62
	}
	s.offsetSet = false
	s.seenKey = !tracks[s.primary].IsVideo()
	s.gop = nil
	s.gopBytes = 0
	s.sessions++
	s.stats.reset(tracks)
	for r := range s.readers {
		r.push(Event{Tracks: tracks, Discontinuity: s.sessions > 1}, true)
	}
}

// write rebases and fans out one unit of publisher p.
func (s *Stream) write(p *Publisher, u *unit.Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher != p {
		return ErrPublisherClosed
	}
	if u.Track < 0 || u.Track >= len(s.tracks) {
		return fmt.Errorf("%w: track %d of %d", ErrInvalidUnit, u.Track, len(s.tracks))
	}
	if u.PTS < u.DTS {
		return fmt.Errorf("%w: pts %v before dts %v", ErrInvalidUnit, u.PTS, u.DTS)
	}
	if !s.seenKey {
		// Video before the first keyframe cannot be decoded by anyone.
		if u.Track == s.primary && !u.Key {
			return nil
		}
		if u.Track == s.primary {
			s.seenKey = true
		}
	}
	if !s.offsetSet {
		base := time.Duration(0)
		if s.sessions > 1 || s.maxDTS > 0 {
			base = s.maxDTS + 100*time.Millisecond
		}
		s.offset = base - u.DTS
		if s.source == SourceDerived && u.DTS >= base {
			// A derived stream keeps the timestamps of the stream it is made from, so that
			// both share one timeline (a transcoded rendition lines up with its source).
			s.offset = 0
		}
		s.offsetSet = true
	}
	u.DTS += s.offset
	u.PTS += s.offset
	if u.DTS < s.lastDTS[u.Track] {
		return fmt.Errorf("%w: track %d dts %v after %v", ErrTimestampBackwards, u.Track, u.DTS, s.lastDTS[u.Track])
	}
	if u.DTS < 0 {
		// A track that started slightly before the first unit: nothing to play yet.
		return nil
	}
	s.lastDTS[u.Track] = u.DTS
	if u.DTS > s.maxDTS {
		s.maxDTS = u.DTS
	}
	if u.Size == 0 {
		for _, b := range u.Payload {
			u.Size += len(b)
		}
	}

	now := s.reg.Now()
	u.Received = now
	s.stats.add(now, s.tracks[u.Track], u)

	resync := s.isResync(u)
	s.cache(u, resync)
	for r := range s.readers {
		r.push(Event{Unit: u}, resync)
	}
	return nil
}

// cache keeps the units since the last GOP start, bounded in bytes.
func (s *Stream) cache(u *unit.Unit, resync bool) {
	if resync {
		// Audio-only streams resync on every unit: keep about the last second.
		if s.tracks[s.primary].IsVideo() || len(s.gop) == 0 || u.DTS-s.gop[0].DTS >= time.Second {
			clear(s.gop)
			s.gop = s.gop[:0]
			s.gopBytes = 0
		}
	} else if len(s.gop) == 0 {
		return // no GOP start cached yet
	}
	if s.gopBytes+u.Size > s.reg.MaxGOPBytes {
		// A GOP larger than the budget is not cached: late joiners wait for the next keyframe.
		clear(s.gop)
		s.gop = s.gop[:0]
		s.gopBytes = 0
		return
	}
	s.gop = append(s.gop, u)
	s.gopBytes += u.Size
}

// unpublish detaches p and starts the grace window (or ends the stream when grace is 0 or now is set).
func (s *Stream) unpublish(p *Publisher, now bool) {
	s.mu.Lock()
	if s.publisher != p {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	if now || s.reg.GracePeriod <= 0 {
		s.mu.Unlock()
		s.reg.endStream(s)
		return
	}
	s.grace = time.AfterFunc(s.reg.GracePeriod, func() { s.reg.endIdle(s) })
	s.mu.Unlock()
}

// finish marks the stream ended and tells every reader. It returns the publisher to close, if any.
func (s *Stream) finish() *Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	s.ended = true
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	for r := range s.readers {
		r.end()
	}
	s.gop = nil
	p := s.publisher
	s.publisher = nil
	return p
}
