package cmafstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Errors returned by Manager.Stream and Stream.Wait.
var (
	// ErrNotFound is returned by Manager.Stream when the stream is not live and has no
	// final state left to serve.
	ErrNotFound = errors.New("stream not live")

	// ErrClosed is returned by Manager.Stream before Start and after Close.
	ErrClosed = errors.New("cmaf streams closed")

	// ErrEnded is returned by Stream.Wait when the stream ended before the condition held.
	ErrEnded = errors.New("stream ended")
)

// Defaults of the Manager fields.
const (
	DefaultPartTarget     = 250 * time.Millisecond
	DefaultSegmentTarget  = 2 * time.Second
	DefaultWindow         = 30 * time.Second
	DefaultKeepSegments   = 4
	DefaultMaxWindowBytes = 128 << 20
	DefaultIdleTimeout    = 30 * time.Second
	DefaultEndedTimeout   = 60 * time.Second
)

// Manager runs the CMAF segmenters of the live streams of a hub.Registry, one per
// stream, started on first use (see the package doc).
type Manager struct {
	// Hub is the registry of live streams. Required.
	Hub *hub.Registry

	// Logger receives lifecycle logs. Default: slog.Default().
	Logger *slog.Logger

	// PartTarget is the part duration to aim for: parts hold the most whole frames that
	// fit it (7 frames at 30 fps). Default: 250 ms.
	PartTarget time.Duration

	// SegmentTarget is the minimum segment duration: a segment ends at the first video key
	// unit at or after it, so a longer GOP makes longer segments. Default: 2 s.
	SegmentTarget time.Duration

	// Window is how much media playlists and manifests list: the newest segments whose
	// durations add up to at most Window (at least 3 segments). Default: 30 s.
	Window time.Duration

	// KeepSegments is how many segments stay in memory, fetchable, after they leave the
	// window. Default: 4.
	KeepSegments int

	// MaxWindowBytes bounds the bytes kept per stream: older segments are dropped first,
	// keeping at least one. Default: 128 MiB.
	MaxWindowBytes int

	// IdleTimeout stops a stream's segmenter when no consumer showed interest for this
	// long and nobody subscribed. Default: 30 s.
	IdleTimeout time.Duration

	// EndedTimeout is how long the final state of an ended stream is kept at most.
	// Default: 60 s.
	EndedTimeout time.Duration

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// OnSegment, when set, is called (on the stream's goroutine; it must not block) for
	// every finished segment, e.g. to observe segment build times.
	OnSegment func(name string, sg *Segment)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool
}

// StreamInfo describes a running Stream.
type StreamInfo struct {
	Name string
	// ID is the random id that makes the stream's segment names unique.
	ID string
	// Segments and Bytes are the finished segments held in memory and their size.
	Segments int
	Bytes    int
	// Ended is set once no more media will come.
	Ended bool
}

// Start applies the defaults and validates the fields.
func (m *Manager) Start() error {
	if m.Hub == nil {
		return errors.New("cmafstream: hub is required")
	}
	if m.PartTarget < 0 || m.SegmentTarget < 0 || m.Window < 0 || m.KeepSegments < 0 ||
		m.MaxWindowBytes < 0 || m.IdleTimeout < 0 || m.EndedTimeout < 0 {
		return errors.New("cmafstream: durations and sizes must not be negative")
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	if m.PartTarget == 0 {
		m.PartTarget = DefaultPartTarget
	}
	if m.SegmentTarget == 0 {
		m.SegmentTarget = DefaultSegmentTarget
	}
	if m.Window == 0 {
		m.Window = DefaultWindow
	}
	if m.KeepSegments == 0 {
		m.KeepSegments = DefaultKeepSegments
	}
	if m.MaxWindowBytes == 0 {
		m.MaxWindowBytes = DefaultMaxWindowBytes
	}
	if m.IdleTimeout == 0 {
		m.IdleTimeout = DefaultIdleTimeout
	}
	if m.EndedTimeout == 0 {
		m.EndedTimeout = DefaultEndedTimeout
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.streams = make(map[string]*Stream)
	return nil
}

// Close stops every Stream (each publishes a final, ended State) and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed || m.streams == nil {
		m.closed = true
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Stream returns the Stream of the named live stream, starting it when needed, and marks
// consumer interest in it. After the hub stream ended it returns the final State's Stream
// while that is kept. Errors: ErrNotFound, ErrClosed.
func (m *Manager) Stream(name string) (*Stream, error) {
	m.Hub.Lookup(m.ctx, name) // outside the lock: a cluster relay may pull it from its origin first
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.streams == nil {
		return nil, ErrClosed
	}
	hs := m.Hub.Stream(name)
	s := m.streams[name]
	if s != nil && hs != nil && hs != s.hub {
		// The stream ended and the channel went live again: a new stream, a new segmenter.
		delete(m.streams, name)
		s.cancel()
		s = nil
	}
	if s == nil {
		if hs == nil {
			return nil, ErrNotFound
		}
		r, err := hs.AddReader("cmaf")
		if err != nil {
			return nil, ErrNotFound
		}
		s = newStream(m, name, hs, r)
		m.streams[name] = s
		s.logger.Info("cmaf stream started")
		m.wg.Add(1)
		go s.run()
	}
	s.touch()
	return s, nil
}

// Streams returns the running Streams sorted by name.
func (m *Manager) Streams() []StreamInfo {
	m.mu.Lock()
	all := make([]*Stream, 0, len(m.streams))
	for _, s := range m.streams {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]StreamInfo, 0, len(all))
	for _, s := range all {
		st := s.State()
		in := StreamInfo{Name: s.name, ID: s.id, Segments: len(st.Segments), Ended: st.Ended}
		for _, sg := range st.Segments {
			in.Bytes += sg.Size
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// idleRemaining returns how long s still has before it is idle. At zero or less it has
// been removed from the map, so that no consumer finds it any more.
func (m *Manager) idleRemaining(s *Stream) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.waiters.Load() > 0 || s.subscribers() > 0 {
		return m.IdleTimeout
	}
	rem := time.Duration(s.lastTouch.Load()+int64(m.IdleTimeout)) - time.Duration(m.Now().UnixNano())
	if rem > 0 {
		return rem
	}
	if m.streams[s.name] == s {
		delete(m.streams, s.name)
	}
	return 0
}

func (m *Manager) remove(s *Stream) {
	m.mu.Lock()
	if m.streams[s.name] == s {
		delete(m.streams, s.name)
	}
	m.mu.Unlock()
}

// newID returns a random identifier that makes segment names unique per Stream.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
