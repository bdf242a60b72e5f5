package cmafstream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// errIdle stops a Stream that no consumer wanted for Manager.IdleTimeout.
var errIdle = errors.New("idle")

// Stream is the CMAF output of one live stream. Its goroutine reads the hub and is the
// only writer; consumers read States.
type Stream struct {
	m      *Manager
	name   string
	id     string
	hub    *hub.Stream
	reader *hub.Reader
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	lastTouch atomic.Int64 // Manager.Now() in unix nanoseconds
	waiters   atomic.Int32
	state     atomic.Pointer[State]
	changed   chan struct{} // Changed of the published State

	subMu      sync.Mutex
	subs       map[*Subscription]struct{}
	subsClosed bool

	// run-loop state
	seg          *cmaf.Segmenter
	tracks       []*unit.Track // of the current session
	leader       int
	init         *Init
	nextInit     int
	session      int
	anchored     bool
	anchorWall   time.Time
	endWall      time.Time
	newest       time.Duration // newest unit DTS of the session
	seenUnit     bool
	open         []*Part
	unwalled     []*Part // parts waiting for the session's wall-clock anchor
	newSegs      []*Segment
	dirty        bool
	nextSeq      uint64
	nextPart     uint64
	segments     []*Segment
	parts        []*Part
	listed       int
	maxPart      time.Duration
	maxSeg       time.Duration
	ended        bool
	version      uint64
	lastDropped  uint64
	dropPending  bool
	invalidUnits int
	sessionFirst bool          // the next part is the first of its session
	sessionStart time.Duration // Start of the session's first part
	epoch        time.Time
	openDisc     bool   // the segment being written follows a reset
	discCount    uint64 // Discontinuity segments so far
}

func newStream(m *Manager, name string, hs *hub.Stream, r *hub.Reader) *Stream {
	ctx, cancel := context.WithCancel(m.ctx)
	s := &Stream{
		m:       m,
		name:    name,
		id:      newID(),
		hub:     hs,
		reader:  r,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		subs:    make(map[*Subscription]struct{}),
	}
	s.logger = m.Logger.With("channel", name, "stream_id", s.id)
	s.state.Store(&State{Changed: s.changed})
	return s
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// ID returns a random id, unique per Stream: consumers put it in segment names, so that
// a name always means the same bytes (immutable caching).
func (s *Stream) ID() string { return s.id }

// State returns the current State. It is never nil.
func (s *Stream) State() *State { return s.state.Load() }

// Touch marks consumer interest: the Stream does not go idle for Manager.IdleTimeout.
func (s *Stream) Touch() { s.touch() }

func (s *Stream) touch() { s.lastTouch.Store(s.m.Now().UnixNano()) }

// Wait returns the first State for which ready returns true, waiting for changes without
// polling. It returns the latest State with ErrEnded when the stream ended first, or with
// the context's error. A waiting consumer keeps the Stream from going idle.
func (s *Stream) Wait(ctx context.Context, ready func(*State) bool) (*State, error) {
	s.touch()
	s.waiters.Add(1)
	defer func() {
		s.touch()
		s.waiters.Add(-1)
	}()
	for {
		st := s.state.Load()
		if ready(st) {
			return st, nil
		}
		if st.Ended {
			return st, ErrEnded
		}
		select {
		case <-st.Changed:
		case <-ctx.Done():
			return s.state.Load(), ctx.Err()
		}
	}
}

func (s *Stream) run() {
	defer s.m.wg.Done()
	defer s.cancel()

	reason := s.runInner()
	s.reader.Close()
	if s.seg != nil {
		s.seg.Close()
	}
	s.ended = true
	s.dirty = true
	s.commit()
	if errors.Is(reason, hub.ErrStreamEnded) {
		s.linger()
	}
	s.m.remove(s)
	s.closeSubscriptions()

	st := s.State()
	s.logger.Info("cmaf stream stopped", "reason", reason.Error(), "segments", st.NextSeq,
		"dropped", s.reader.Dropped(), "invalid_units", s.invalidUnits)
}

func (s *Stream) runInner() error {
	idle := time.NewTimer(s.m.IdleTimeout)
	defer idle.Stop()
	var evs []hub.Event
	for {
		for {
			var err error
			evs, err = s.reader.TryReadBatch(evs[:0])
			n := len(evs)
			if d := s.reader.Dropped(); d > s.lastDropped {
				// The hub skipped this reader to a key unit: cut there, as at a reconnect.
				s.lastDropped = d
				s.dropPending = true
			}
			for i := range evs {
				s.handle(evs[i])
			}
			clear(evs)
			s.commit()
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-idle.C:
			rem := s.m.idleRemaining(s)
			if rem <= 0 {
				return errIdle
			}
			idle.Reset(rem)
		case <-s.reader.Wait():
		}
	}
}

// linger keeps the final State of an ended stream until it is idle, EndedTimeout passed,
// or the Stream is cancelled.
func (s *Stream) linger() {
	idle := time.NewTimer(s.m.IdleTimeout)
	defer idle.Stop()
	end := time.NewTimer(s.m.EndedTimeout)
	defer end.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-end.C:
			return
		case <-idle.C:
			rem := s.m.idleRemaining(s)
			if rem <= 0 {
				return
			}
			idle.Reset(rem)
		}
	}
}

func (s *Stream) handle(ev hub.Event) {
	switch {
	case ev.Tracks != nil:
		s.startSession(ev.Tracks, ev.Discontinuity)
	case ev.Unit != nil:
		s.writeUnit(ev.Unit)
	}
}

// startSession starts the segmenter on the first tracks, and resets it at a reconnect:
// the open segment ends, and the next one is a Discontinuity in a new Session.
func (s *Stream) startSession(tracks []*unit.Track, discontinuity bool) {
	s.tracks = tracks
	s.leader = 0
	for i, t := range tracks {
		if t != nil && t.IsVideo() {
			s.leader = i
			break
		}
	}
	var err error
	if s.seg != nil {
		err = s.seg.Reset(tracks)
	} else {
		s.seg = &cmaf.Segmenter{
			Tracks:        tracks,
			PartTarget:    s.m.PartTarget,
			SegmentTarget: s.m.SegmentTarget,
			OnInit:        s.onInit,
			OnPart:        s.onPart,
			OnSegment:     s.onSegment,
		}
		if err = s.seg.Start(); err != nil {
			s.seg = nil
		}
	}
	if err != nil {
		s.logger.Warn("tracks not segmentable", "err", err, "tracks", codecNames(tracks))
	}
	if s.nextSeq > 0 || len(s.open) > 0 {
		s.openDisc = true
	}
	if discontinuity {
		s.session++
		s.anchored = false
	}
	if discontinuity || s.nextPart == 0 {
		s.sessionFirst = true
	}
	s.newest, s.seenUnit = 0, false
	s.dropPending = false
	s.dirty = true
}

func (s *Stream) writeUnit(u *unit.Unit) {
	if s.seg == nil {
		return
	}
	if s.dropPending && u.Track == s.leader && u.Key {
		s.dropPending = false
		s.logger.Warn("units dropped for a slow reader", "dropped", s.lastDropped)
		if err := s.seg.Reset(s.tracks); err != nil {
			return
		}
		s.openDisc = true
	}
	if !s.seenUnit || u.DTS > s.newest {
		s.newest, s.seenUnit = u.DTS, true
	}
	if err := s.seg.WriteUnit(u); err != nil && errors.Is(err, cmaf.ErrInvalidUnit) {
		s.invalidUnits++
		if s.invalidUnits == 1 {
			s.logger.Warn("unit refused", "err", err, "track", u.Track)
		}
	}
}

func (s *Stream) onInit(data []byte) {
	s.init = &Init{Seq: s.nextInit, Tracks: s.tracks, Data: data}
	s.nextInit++
	s.dirty = true
}

func (s *Stream) onPart(cp *cmaf.Part) {
	p := &Part{
		Number:      s.nextPart,
		SegmentSeq:  s.nextSeq,
		Index:       len(s.open),
		Start:       cp.Start,
		Duration:    cp.Duration,
		Independent: cp.Independent,
		Init:        s.init,
		Data:        cp.Data,
	}
	s.nextPart++
	if s.sessionFirst {
		s.sessionFirst = false
		s.sessionStart = p.Start
	}
	if s.anchored {
		p.Wall = s.anchorWall.Add(p.Start)
		s.endWall = p.Wall.Add(p.Duration)
	} else {
		s.unwalled = append(s.unwalled, p)
	}
	s.open = append(s.open, p)
	s.parts = append(s.parts, p)
	if p.Duration > s.maxPart {
		s.maxPart = p.Duration
	}
	s.dirty = true
}

func (s *Stream) onSegment(cs *cmaf.Segment) {
	if len(s.open) == 0 {
		return
	}
	seg := &Segment{
		Seq:             s.nextSeq,
		Start:           cs.Start,
		Duration:        cs.Duration,
		Parts:           s.open,
		Independent:     cs.Independent,
		Discontinuity:   s.openDisc,
		Session:         s.session,
		SessionStart:    s.sessionStart,
		Discontinuities: s.discCount,
		Init:            s.open[0].Init,
		Wall:            s.open[0].Wall,
	}
	for _, p := range s.open {
		seg.Size += len(p.Data)
	}
	if seg.Discontinuity {
		s.discCount++
	}
	s.openDisc = false
	s.open = nil
	s.nextSeq++
	s.segments = append(s.segments, seg)
	s.newSegs = append(s.newSegs, seg)
	if seg.Duration > s.maxSeg {
		s.maxSeg = seg.Duration
	}
	s.dirty = true
}

// anchor maps the session's timeline to the wall clock: the newest unit is "now", and the
// session never starts before the previous one ended.
func (s *Stream) anchor() {
	if s.anchored || len(s.unwalled) == 0 {
		return
	}
	now := s.m.Now()
	s.anchorWall = now.Add(-s.newest)
	if first := s.unwalled[0].Start; s.anchorWall.Add(first).Before(s.endWall) {
		s.anchorWall = s.endWall.Add(-first)
	}
	s.anchored = true
	if s.epoch.IsZero() {
		s.epoch = s.anchorWall.Add(s.unwalled[0].Start)
	}
	for _, p := range s.unwalled {
		p.Wall = s.anchorWall.Add(p.Start)
		s.endWall = p.Wall.Add(p.Duration)
	}
	clear(s.unwalled)
	s.unwalled = s.unwalled[:0]
	for _, sg := range s.newSegs {
		if sg.Wall.IsZero() {
			sg.Wall = sg.Parts[0].Wall
		}
	}
}

// commit publishes a new State when something changed, then hands the new segments to
// the subscribers.
func (s *Stream) commit() {
	if !s.dirty {
		return
	}
	s.dirty = false
	s.anchor()
	s.trim()

	now := s.m.Now()
	for i := len(s.parts) - 1; i >= 0 && s.parts[i].Produced.IsZero(); i-- {
		s.parts[i].Produced = now
	}
	s.version++
	ch := make(chan struct{})
	st := &State{
		Version:            s.version,
		Segments:           s.segments,
		Listed:             s.listed,
		Parts:              s.parts,
		Open:               s.open,
		OpenDiscontinuity:  s.openDisc,
		NextSeq:            s.nextSeq,
		NextPart:           s.nextPart,
		Init:               s.init,
		Session:            s.session,
		SessionStart:       s.sessionStart,
		Epoch:              s.epoch,
		MaxPartDuration:    s.maxPart,
		MaxSegmentDuration: s.maxSeg,
		Ended:              s.ended,
		Changed:            ch,
	}
	s.state.Store(st)
	close(s.changed)
	s.changed = ch

	if len(s.newSegs) > 0 {
		if s.m.OnSegment != nil {
			for _, sg := range s.newSegs {
				s.m.OnSegment(s.name, sg)
			}
		}
		s.deliver(s.newSegs)
		clear(s.newSegs)
		s.newSegs = s.newSegs[:0]
	}
}

// trim drops the segments (and their parts) past the window, KeepSegments and
// MaxWindowBytes.
func (s *Stream) trim() {
	n := len(s.segments)
	if n == 0 {
		return
	}
	// The window: the newest segments adding up to at most Window, at least 3.
	first := n
	var dur time.Duration
	for first > 0 {
		d := s.segments[first-1].Duration
		if n-first >= 3 && dur+d > s.m.Window {
			break
		}
		dur += d
		first--
	}
	keepFrom := max(0, first-s.m.KeepSegments)
	bytes := 0
	for _, sg := range s.segments[keepFrom:] {
		bytes += sg.Size
	}
	for keepFrom < n-1 && bytes > s.m.MaxWindowBytes {
		bytes -= s.segments[keepFrom].Size
		keepFrom++
	}
	first = max(first, keepFrom)
	if keepFrom > 0 {
		s.segments = s.segments[keepFrom:]
		firstSeq := s.segments[0].Seq
		k := 0
		for k < len(s.parts) && s.parts[k].SegmentSeq < firstSeq {
			k++
		}
		s.parts = s.parts[k:]
	}
	s.listed = first - keepFrom
}

func codecNames(tracks []*unit.Track) string {
	out := ""
	for i, t := range tracks {
		if i > 0 {
			out += ","
		}
		if t == nil {
			out += "nil"
			continue
		}
		out += t.Codec.String()
	}
	return out
}
