package cmaf

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/onair/onair/internal/unit"
)

// Defaults of the Segmenter fields.
const (
	DefaultPartTarget    = 250 * time.Millisecond
	DefaultSegmentTarget = 2 * time.Second
	DefaultMaxPartSize   = 32 << 20
)

const (
	// maxLag is how far a track may lag the newest unit of the stream before parts are
	// finished without waiting for it.
	maxLag = 500 * time.Millisecond

	// maxPartSamples bounds the samples of one part (all tracks).
	maxPartSamples = 8192

	// maxMaxPartSize keeps parts far from the 32-bit sizes and offsets of the boxes.
	maxMaxPartSize = 256 << 20

	// minMaxSegmentDuration is the smallest default of MaxSegmentDuration.
	minMaxSegmentDuration = 30 * time.Second
)

// Segmenter cuts units into an init segment, parts and segments (see the package doc).
// Fill the exported fields, call Start, then WriteUnit for every unit of the stream.
// Callbacks run synchronously inside Start, WriteUnit, Reset and Close.
// A Segmenter is not safe for concurrent use.
type Segmenter struct {
	// Tracks of the stream: a unit's Track indexes it. Reset replaces it.
	Tracks []*unit.Track

	// PartTarget is the part duration to aim for. Parts hold a whole number of frames of
	// the leading track, the most that fit the target (at least one). Default 250 ms.
	PartTarget time.Duration

	// SegmentTarget is the minimum segment duration: a segment is cut at the first key unit
	// of the leading video track at or after it (audio-only: the first unit). Default 2 s.
	SegmentTarget time.Duration

	// MaxSegmentDuration cuts a segment that found no key unit for that long.
	// Default the larger of 30 s and 10 × SegmentTarget.
	MaxSegmentDuration time.Duration

	// MaxPartSize is the most bytes a part buffers before it is flushed early. A single
	// unit larger than that is refused. Default 32 MiB, at most 256 MiB.
	MaxPartSize int

	// OnInit receives the init segment, from Start and from a Reset that changes tracks.
	OnInit OnInitFunc

	// OnPart receives each finished part.
	OnPart OnPartFunc

	// OnSegment receives each finished segment.
	OnSegment OnSegmentFunc

	state   segmenterState
	tracks  []*segmenterTrack
	leader  int
	counts  []int // per track, samples of the part being written
	fragSeq uint32
	newest  time.Duration // highest DTS received

	open          bool          // a segment is open: the leading track delivered a key unit
	openedAt      time.Duration // DTS of the key unit that opened the stream
	seg           *Segment      // the segment receiving parts
	nextSeq       uint64
	emitted       bool // a segment was emitted: the next Reset makes a discontinuity
	discontinuity bool // the next segment follows a Reset

	// The oldest unfinished part starts at headStart; cuts are the starts of the newer
	// parts, oldest first; the newest part starts at tailStart, in a segment starting at
	// tailSegStart.
	headStart          time.Duration
	headIndependent    bool
	cuts               []cut
	tailStart          time.Duration
	tailSegStart       time.Duration
	tailSegIndependent bool
}

type segmenterState int

const (
	stateNew segmenterState = iota
	stateRunning
	stateNoTracks
	stateClosed
)

// cut is a part boundary: a new part starts at at.
type cut struct {
	at          time.Duration
	newSegment  bool
	independent bool
}

// Start applies the defaults, checks the tracks and emits the init segment.
func (s *Segmenter) Start() error {
	if s.state != stateNew {
		return fmt.Errorf("segmenter already started")
	}
	if s.PartTarget <= 0 {
		s.PartTarget = DefaultPartTarget
	}
	if s.SegmentTarget <= 0 {
		s.SegmentTarget = DefaultSegmentTarget
	}
	if s.MaxSegmentDuration <= 0 {
		s.MaxSegmentDuration = max(minMaxSegmentDuration, 10*s.SegmentTarget)
	}
	if s.MaxPartSize <= 0 {
		s.MaxPartSize = DefaultMaxPartSize
	}
	s.MaxPartSize = min(s.MaxPartSize, maxMaxPartSize)
	if err := s.setup(s.Tracks); err != nil {
		return err
	}
	s.state = stateRunning
	return nil
}

// setup builds the track states and emits the init segment.
func (s *Segmenter) setup(tracks []*unit.Track) error {
	if len(tracks) == 0 {
		return fmt.Errorf("no tracks")
	}
	states := make([]*segmenterTrack, len(tracks))
	init := fmp4.Init{Tracks: make([]*fmp4.InitTrack, len(tracks))}
	leader := -1
	for i, t := range tracks {
		st, err := newSegmenterTrack(t, i+1)
		if err != nil {
			return fmt.Errorf("track %d: %w", i, err)
		}
		states[i] = st
		init.Tracks[i] = st.init
		if leader < 0 && st.video {
			leader = i
		}
	}
	if leader < 0 {
		leader = 0
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return fmt.Errorf("marshal init: %w", err)
	}
	data := buf.Bytes()
	if err := fixHvcC(data, tracks); err != nil {
		return fmt.Errorf("marshal init: %w", err)
	}

	s.tracks = states
	s.leader = leader
	s.Tracks = tracks
	if s.OnInit != nil {
		s.OnInit(data)
	}
	return nil
}

// WriteUnit adds a unit. Units of one track must come in DTS order; tracks are expected
// to be interleaved by DTS (a track more than half a second behind is not waited for).
// Video units before the first key unit are dropped. An error means the unit was refused;
// the segmenter stays usable.
func (s *Segmenter) WriteUnit(u *unit.Unit) error {
	switch s.state {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return ErrClosed
	case stateNoTracks:
		return ErrNoTracks
	}
	if u.Track < 0 || u.Track >= len(s.tracks) {
		return fmt.Errorf("%w: track %d of %d", ErrInvalidUnit, u.Track, len(s.tracks))
	}
	tr := s.tracks[u.Track]
	if tr.seen && u.DTS < tr.lastDTS {
		return fmt.Errorf("%w: track %d dts %v before %v", ErrInvalidUnit, u.Track, u.DTS, tr.lastDTS)
	}
	if u.DTS < 0 {
		return fmt.Errorf("%w: negative dts %v", ErrInvalidUnit, u.DTS)
	}
	size := 0
	for _, p := range u.Payload {
		size += len(p)
	}
	if size > s.MaxPartSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidUnit, size, s.MaxPartSize)
	}

	leader := u.Track == s.leader
	if leader && !s.open && tr.video && !u.Key {
		return nil // wait for a key unit to start the first segment
	}
	if !tr.add(u) {
		return nil
	}
	if u.DTS > s.newest {
		s.newest = u.DTS
	}

	switch {
	case leader && !s.open:
		s.openStream(u.DTS)
	case leader:
		s.cutOnLeader(u.DTS, u.Key || !tr.video, tr.frameDur)
	case s.open:
		s.cutOnStall(u.DTS)
	default:
		tr.dropBefore(s.newest - maxLag)
	}

	s.checkBounds()
	s.flush(false)
	return nil
}

// openStream starts the first segment at the first key unit of the leading track.
func (s *Segmenter) openStream(at time.Duration) {
	s.open = true
	for i, tr := range s.tracks {
		if i == s.leader {
			continue
		}
		tr.dropBefore(at)
	}
	s.openedAt = at
	s.headStart, s.headIndependent = at, true
	s.tailStart, s.tailSegStart, s.tailSegIndependent = at, at, true
	s.openSegment(at, true)
}

func (s *Segmenter) openSegment(at time.Duration, independent bool) {
	s.seg = &Segment{Seq: s.nextSeq, Start: at, Independent: independent, Discontinuity: s.discontinuity}
}

// cutOnLeader decides whether a unit of the leading track at t starts a part or a segment.
func (s *Segmenter) cutOnLeader(t time.Duration, key bool, frameDur time.Duration) {
	if t <= s.tailStart {
		return
	}
	seg := t - s.tailSegStart
	switch {
	case key && (seg >= segmentThreshold(s.SegmentTarget, frameDur) || !s.tailSegIndependent):
		// A segment that did not start with a key unit ends at the first one.
		s.addCut(cut{at: t, newSegment: true, independent: true})
	case seg >= s.MaxSegmentDuration:
		s.addCut(cut{at: t, newSegment: true, independent: key})
	case t-s.tailStart >= partThreshold(s.PartTarget, frameDur):
		s.addCut(cut{at: t, independent: key})
	}
}

// cutOnStall cuts parts on another track's clock while the leading track delivers nothing.
func (s *Segmenter) cutOnStall(t time.Duration) {
	if t-s.tracks[s.leader].lastDTS <= maxLag || t-s.tailStart < s.PartTarget {
		return
	}
	s.addCut(cut{at: t, newSegment: t-s.tailSegStart >= s.MaxSegmentDuration})
}

func (s *Segmenter) addCut(c cut) {
	s.cuts = append(s.cuts, c)
	s.tailStart = c.at
	if c.newSegment {
		s.tailSegStart = c.at
		s.tailSegIndependent = c.independent
	}
}

// partThreshold returns the part duration at which a new part starts: the largest whole
// number of frames that fits the target (at least one), minus half a frame so that
// timestamp jitter does not add a frame.
func partThreshold(target, frameDur time.Duration) time.Duration {
	if frameDur <= 0 {
		return target
	}
	n := max(1, (target+frameDur/100)/frameDur)
	return n*frameDur - frameDur/2
}

// segmentThreshold returns the segment duration from which a key unit starts a segment.
func segmentThreshold(target, frameDur time.Duration) time.Duration {
	return target - frameDur/2
}

// checkBounds flushes a part early when the buffered samples pass the limits.
func (s *Segmenter) checkBounds() {
	size, count := 0, 0
	for _, tr := range s.tracks {
		size += len(tr.buf)
		count += len(tr.queue)
	}
	switch {
	case size <= s.MaxPartSize && count <= maxPartSamples:
	case !s.open:
		for _, tr := range s.tracks {
			tr.dropBefore(s.newest)
		}
	case s.newest > s.tailStart:
		// Cut at the newest unit of the leading track when it moved on, so the part starts
		// with one of its samples; else at the newest unit of any track.
		at, independent := s.newest, false
		if l := s.tracks[s.leader]; l.hasPending && l.pending.dts > s.tailStart {
			at, independent = l.pending.dts, l.pending.sync
		}
		s.addCut(cut{at: at, independent: independent})
		s.flush(true)
	default:
		// No time has passed since the part started: take every finished sample.
		s.flush(true)
		s.emitPart(s.headStart, true)
	}
}

// ready reports whether every track delivered what belongs before at, or stalled.
func (s *Segmenter) ready(at time.Duration) bool {
	for _, tr := range s.tracks {
		last := max(tr.lastDTS, s.openedAt) // a track silent since the start counts from there
		if last < at && s.newest-last <= maxLag {
			return false
		}
	}
	return true
}

// flush emits the parts whose end is decided and whose tracks are ready (all of them
// when force is set).
func (s *Segmenter) flush(force bool) {
	n := 0
	for n < len(s.cuts) {
		c := s.cuts[n]
		if !force && !s.ready(c.at) {
			break
		}
		s.emitPart(c.at, false)
		if c.newSegment {
			s.finishSegment(c.at)
			s.openSegment(c.at, c.independent)
		}
		s.headStart, s.headIndependent = c.at, c.independent
		n++
	}
	s.cuts = s.cuts[:copy(s.cuts, s.cuts[n:])]
}

// emitPart writes the samples before end (every finished sample when all is set) into a
// part [headStart, end) of the current segment.
func (s *Segmenter) emitPart(end time.Duration, all bool) {
	s.counts = s.counts[:0]
	total := 0
	for _, tr := range s.tracks {
		n := len(tr.queue)
		if !all {
			n = tr.countBefore(end)
		}
		s.counts = append(s.counts, n)
		total += n
	}
	if total == 0 {
		return
	}
	s.fragSeq++
	data := marshalPart(s.fragSeq, s.tracks, s.counts)
	for i, tr := range s.tracks {
		if s.counts[i] > 0 {
			tr.consume(s.counts[i])
		}
	}

	p := &Part{
		SegmentSeq:  s.seg.Seq,
		Index:       len(s.seg.Parts),
		Start:       s.headStart,
		Duration:    max(0, end-s.headStart),
		Independent: s.headIndependent,
		Data:        data,
	}
	s.seg.Parts = append(s.seg.Parts, p)
	s.seg.Size += len(p.Data)
	if s.OnPart != nil {
		s.OnPart(p)
	}
}

// finishSegment ends the current segment at end and emits it if it has parts.
func (s *Segmenter) finishSegment(end time.Duration) {
	seg := s.seg
	if len(seg.Parts) == 0 {
		return
	}
	seg.Duration = max(0, end-seg.Start)
	s.nextSeq++
	s.emitted = true
	s.discontinuity = false
	if s.OnSegment != nil {
		s.OnSegment(seg)
	}
}

// finish emits everything buffered: the held-back samples get estimated durations, and
// the last part and segment end with the last sample of the leading track.
func (s *Segmenter) finish() {
	if s.open {
		for _, tr := range s.tracks {
			tr.finishPending()
		}
		s.flush(true)
		end, ok := s.tracks[s.leader].endTime()
		if !ok {
			end = s.headStart
			for _, tr := range s.tracks {
				if e, ok := tr.endTime(); ok && e > end {
					end = e
				}
			}
		}
		s.emitPart(end, true)
		s.finishSegment(max(end, s.headStart))
	}
	for _, tr := range s.tracks {
		tr.clear()
	}
	s.open = false
	s.cuts = s.cuts[:0]
}

// Reset ends the current segment (a publisher went away) and prepares for the tracks of
// the next publisher session. The next segment is marked Discontinuity. When the tracks
// differ from the current ones, a new init segment is emitted through OnInit; if they
// cannot be used, the error is returned and WriteUnit refuses units until a Reset
// succeeds. Timestamps must keep increasing across a Reset, as the hub guarantees.
func (s *Segmenter) Reset(tracks []*unit.Track) error {
	switch s.state {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return ErrClosed
	}
	s.finish()
	if s.emitted {
		s.discontinuity = true
	}
	if s.state == stateRunning && sameTracks(s.Tracks, tracks) {
		return nil
	}
	if err := s.setup(tracks); err != nil {
		s.state = stateNoTracks
		s.tracks = nil
		return err
	}
	s.state = stateRunning
	return nil
}

// Close emits the last part and segment. Later calls do nothing.
func (s *Segmenter) Close() {
	if s.state == stateRunning {
		s.finish()
	}
	s.state = stateClosed
}

// sameTracks reports whether two track lists describe the same init segment.
func sameTracks(a, b []*unit.Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x.Codec != y.Codec || !bytes.Equal(x.VPS, y.VPS) || !bytes.Equal(x.SPS, y.SPS) ||
			!bytes.Equal(x.PPS, y.PPS) || !bytes.Equal(x.AV1SequenceHeader, y.AV1SequenceHeader) ||
			!bytes.Equal(x.AACConfig, y.AACConfig) || x.SampleRate != y.SampleRate ||
			x.ChannelCount != y.ChannelCount {
			return false
		}
	}
	return true
}
