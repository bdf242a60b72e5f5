// Package hub is the live fan-out: one Stream per live channel, fed by one Publisher
// and read by any number of Readers through bounded queues.
package hub

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/unit"
)

// Registry holds the live streams by name.
type Registry struct {
	// Logger receives lifecycle logs. Default: slog.Default().
	Logger *slog.Logger

	// GracePeriod is how long a stream outlives a publisher that dropped, waiting for it
	// to come back. Default: 10 s. A negative value disables the window.
	GracePeriod time.Duration

	// QueueSize is the maximum number of events queued for one reader. Default: 1024.
	QueueSize int

	// MaxGOPBytes bounds the cached GOP. Default: 32 MiB.
	MaxGOPBytes int

	// OnStart is called (outside any lock) when a stream published on this node by a
	// broadcaster (SourceIngest) starts; relayed and derived streams don't call it, since the
	// channel's live state belongs to its origin. It must not block.
	OnStart func(name string)

	// OnEnd is called (outside any lock) when a SourceIngest stream ends. It must not block.
	OnEnd func(name string)

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// Locate, when set, is asked by Lookup for a stream that is not live on this node. It
	// may make it live here (a cluster relay pulling it from its origin node) and returns
	// once it is, or when it gives up (false, or ctx done). Nil: streams are local only.
	Locate func(ctx context.Context, name string) bool

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool

	droppedMu sync.Mutex
	dropped   map[string]*atomic.Uint64 // cumulative units dropped, by reader kind
}

// Start applies defaults.
func (r *Registry) Start() error {
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.GracePeriod == 0 {
		r.GracePeriod = 10 * time.Second
	}
	if r.QueueSize <= 0 {
		r.QueueSize = 1024
	}
	if r.MaxGOPBytes <= 0 {
		r.MaxGOPBytes = 32 << 20
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	r.streams = make(map[string]*Stream)
	return nil
}

// Dropped returns how many units readers' full queues dropped since Start, by reader
// kind ("rtmp", "hls", ...). Unlike Info.Dropped, it never decreases when readers detach.
func (r *Registry) Dropped() map[string]uint64 {
	r.droppedMu.Lock()
	defer r.droppedMu.Unlock()
	out := make(map[string]uint64, len(r.dropped))
	for kind, n := range r.dropped {
		out[kind] = n.Load()
	}
	return out
}

// droppedCounter returns the cumulative drop counter of a reader kind. Kinds are a small
// set fixed by the code (never user input), so the map stays small.
func (r *Registry) droppedCounter(kind string) *atomic.Uint64 {
	r.droppedMu.Lock()
	defer r.droppedMu.Unlock()
	if r.dropped == nil {
		r.dropped = make(map[string]*atomic.Uint64)
	}
	n := r.dropped[kind]
	if n == nil {
		n = new(atomic.Uint64)
		r.dropped[kind] = n
	}
	return n
}

// Close ends every stream at once: publishers are closed and readers get ErrStreamEnded.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	all := make([]*Stream, 0, len(r.streams))
	for _, s := range r.streams {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		r.endStream(s)
	}
}

// Publish attaches a publisher to the named stream, creating the stream or continuing
// one that is in its grace window. It fails with ErrPublisherActive when the stream
// already has a publisher: the first publisher is never disturbed.
func (r *Registry) Publish(name string, tracks []*unit.Track) (*Publisher, error) {
	return r.PublishFrom(name, tracks, SourceIngest)
}

// PublishFrom is Publish for a stream whose media does not come from a broadcaster on
// this node: src tells the outputs (and OnStart) where it comes from. A stream keeps the
// source of the session that created it.
func (r *Registry) PublishFrom(name string, tracks []*unit.Track, src Source) (*Publisher, error) {
	if len(tracks) == 0 {
		return nil, errors.New("no tracks")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrRegistryClosed
	}
	s := r.streams[name]
	created := false
	if s == nil {
		s = &Stream{
			name:      name,
			reg:       r,
			readers:   make(map[*Reader]struct{}),
			startedAt: r.Now(),
			source:    src,
		}
		r.streams[name] = s
		created = true
	}
	p := &Publisher{stream: s, done: make(chan struct{})}
	s.mu.Lock()
	if s.publisher != nil {
		s.mu.Unlock()
		r.mu.Unlock()
		return nil, ErrPublisherActive
	}
	s.startSession(p, tracks)
	s.mu.Unlock()
	r.mu.Unlock()

	if created {
		r.Logger.Info("stream started", "channel", name, "tracks", len(tracks))
		if r.OnStart != nil && s.source == SourceIngest {
			r.OnStart(name)
		}
	} else {
		r.Logger.Info("publisher resumed stream", "channel", name)
	}
	return p, nil
}

// Stream returns the named stream, or nil when it is not live.
func (r *Registry) Stream(name string) *Stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[name]
}

// Lookup returns the named stream like Stream. When it is not live on this node and
// Locate is set, it asks Locate first (which may pull it from another node) and returns
// the stream once it exists, or nil.
func (r *Registry) Lookup(ctx context.Context, name string) *Stream {
	if s := r.Stream(name); s != nil || r.Locate == nil {
		return s
	}
	if !r.Locate(ctx, name) {
		return nil
	}
	return r.Stream(name)
}

// Streams returns the live streams sorted by name.
func (r *Registry) Streams() []*Stream {
	r.mu.Lock()
	out := make([]*Stream, 0, len(r.streams))
	for _, s := range r.streams {
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// End ends the named stream now, without a grace window: its publisher is disconnected
// and its readers get ErrStreamEnded. It reports whether the stream was live.
func (r *Registry) End(name string) bool {
	s := r.Stream(name)
	if s == nil {
		return false
	}
	r.endStream(s)
	return true
}

// endIdle ends s if it still has no publisher (the grace window expired).
func (r *Registry) endIdle(s *Stream) {
	s.mu.Lock()
	idle := s.publisher == nil
	s.mu.Unlock()
	if idle {
		r.endStream(s)
	}
}

func (r *Registry) endStream(s *Stream) {
	r.mu.Lock()
	if r.streams[s.name] == s {
		delete(r.streams, s.name)
	}
	r.mu.Unlock()
	p := s.finish()
	if p == nil && s.sessions == 0 {
		return
	}
	if p != nil {
		p.kick()
	}
	r.Logger.Info("stream ended", "channel", s.name)
	if r.OnEnd != nil && s.source == SourceIngest {
		r.OnEnd(s.name)
	}
}

// Publisher writes units into a stream.
type Publisher struct {
	stream   *Stream
	done     chan struct{}
	kickOnce sync.Once
}

// Stream returns the stream the publisher writes to.
func (p *Publisher) Stream() *Stream { return p.stream }

// WriteUnit rebases u onto the stream's timeline and hands it to every reader. The hub
// owns u afterwards. It never blocks on readers. An error means the publisher must stop:
// ErrTimestampBackwards and ErrInvalidUnit for bad input, ErrPublisherClosed once kicked.
func (p *Publisher) WriteUnit(u *unit.Unit) error {
	return p.stream.write(p, u)
}

// Done is closed when the publisher is kicked (stream ended by the server, key revoked,
// or shutdown). The publishing connection must then close.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Close detaches the publisher. The stream stays for the grace window.
func (p *Publisher) Close() {
	p.stream.unpublish(p, false)
}

// End detaches the publisher and ends its stream at once, without a grace window (a
// relay: the origin node keeps its own window). A publisher that was already detached
// or replaced leaves the stream alone.
func (p *Publisher) End() {
	p.stream.unpublish(p, true)
}

func (p *Publisher) kick() {
	p.kickOnce.Do(func() { close(p.done) })
}
