package cmafstream

import (
	"sync"
	"time"

	"github.com/onair/onair/internal/unit"
)

// Init is an init segment (ftyp+moov) describing every track of a publisher session.
type Init struct {
	// Seq numbers the init segments of a Stream from 0.
	Seq int

	// Tracks are the session's tracks; MP4 track ID i+1 is Tracks[i].
	Tracks []*unit.Track

	// Data is the ftyp+moov. Never modify it.
	Data []byte

	once   sync.Once
	tracks [][]byte // single-track init segments, by track index
	errs   []error

	memo memo
}

// Track returns the init segment of track i alone (for DASH, one track per
// Representation). It is made once, on first use.
func (in *Init) Track(i int) ([]byte, error) {
	in.once.Do(func() {
		in.tracks = make([][]byte, len(in.Tracks))
		in.errs = make([]error, len(in.Tracks))
		for k := range in.Tracks {
			in.tracks[k], in.errs[k] = splitInit(in.Data, uint32(k+1))
		}
	})
	if i < 0 || i >= len(in.tracks) {
		return nil, errNoSuchTrack
	}
	return in.tracks[i], in.errs[i]
}

// Memo returns the value cached on the init segment under key, calling f to make it the
// first time. Consumers cache what they derive from an init segment (a multivariant
// playlist, codec strings) this way; key should be a value of a type private to the caller.
func (in *Init) Memo(key any, f func() any) any { return in.memo.get(key, f) }

// Part is one CMAF chunk: one movie fragment (moof+mdat) with the samples of every track
// over [Start, Start+Duration). Parts are immutable once published.
type Part struct {
	// Number numbers the parts of a Stream from 0, across segments: the URI of a part
	// can be announced before it is known which segment it will belong to.
	Number uint64

	// SegmentSeq is the Seq of the segment the part belongs to, Index its position in it.
	SegmentSeq uint64
	Index      int

	// Start and Duration are on the hub's unit timeline (DTS).
	Start    time.Duration
	Duration time.Duration

	// Wall is the wall-clock time of Start (see the package doc).
	Wall time.Time

	// Produced is when the part was published.
	Produced time.Time

	// Independent is true when the part starts with a key unit of the leading track.
	Independent bool

	// Init is the init segment the part's track IDs refer to.
	Init *Init

	// Data is the moof+mdat. Never modify it.
	Data []byte

	once   sync.Once
	tracks []TrackFragment
}

// TrackFragment is the part of one track alone: a moof+mdat with that track's samples.
type TrackFragment struct {
	// Data is nil when the track has no sample in the part.
	Data []byte
	// BaseTime is the decode time of the first sample, in the track's timescale.
	BaseTime uint64
	// Duration is the sum of the samples' durations, in the track's timescale.
	Duration uint64
}

// Track returns the fragment of track i alone, cut from Data once, on first use.
func (p *Part) Track(i int) TrackFragment {
	p.once.Do(func() {
		p.tracks = make([]TrackFragment, len(p.Init.Tracks))
		for k := range p.tracks {
			f, err := splitFragment(p.Data, uint32(k+1))
			if err == nil {
				p.tracks[k] = f
			}
		}
	})
	if i < 0 || i >= len(p.tracks) {
		return TrackFragment{}
	}
	return p.tracks[i]
}

// Segment is a finished run of parts, normally starting at a key unit.
type Segment struct {
	// Seq numbers the segments of a Stream from 0, across publisher sessions: it is the
	// HLS media sequence number and the DASH $Number$.
	Seq uint64

	// Start and Duration are on the hub's unit timeline (DTS).
	Start    time.Duration
	Duration time.Duration

	// Wall is the wall-clock time of Start.
	Wall time.Time

	// Parts are the segment's parts in order; their Data concatenated are the segment.
	Parts []*Part

	// Size is the total size of the parts' Data.
	Size int

	// Independent is true when the segment starts with a key unit.
	Independent bool

	// Discontinuity is true for the first segment after a publisher reconnect or a gap
	// (units dropped by the hub for this reader): timestamps or tracks may jump.
	Discontinuity bool

	// Discontinuities counts the Discontinuity segments before this one since the
	// Stream started (the HLS discontinuity sequence number of the segment).
	Discontinuities uint64

	// Session numbers the publisher sessions of the Stream from 0. A new session starts at
	// each reconnect; its wall-clock mapping, and maybe its Init, are new. SessionStart is
	// the Start of the session's first part: with Wall-Start (the session's wall clock at
	// time 0) it gives a fixed origin for the session (a DASH Period).
	Session      int
	SessionStart time.Duration

	// Init is the init segment of the segment's parts.
	Init *Init
}

// End returns Start+Duration.
func (s *Segment) End() time.Duration { return s.Start + s.Duration }

// Chunks returns the parts' Data in order (the segment without copying it).
func (s *Segment) Chunks() [][]byte {
	out := make([][]byte, len(s.Parts))
	for i, p := range s.Parts {
		out[i] = p.Data
	}
	return out
}

// TrackChunks returns the parts of track i alone, in order, leaving out empty ones.
func (s *Segment) TrackChunks(i int) [][]byte {
	out := make([][]byte, 0, len(s.Parts))
	for _, p := range s.Parts {
		if f := p.Track(i); f.Data != nil {
			out = append(out, f.Data)
		}
	}
	return out
}

// State is an immutable snapshot of a Stream. A new State replaces it after every change;
// Changed is closed then.
type State struct {
	// Version increases with each State of a Stream.
	Version uint64

	// Segments are the finished segments kept in memory, oldest first. The first Listed
	// of them have left the window: they stay fetchable for players that loaded an older
	// playlist, but playlists no longer show them (see Window).
	Segments []*Segment
	Listed   int

	// Parts are the parts of Segments followed by Open, oldest first.
	Parts []*Part

	// Open are the parts of the segment being written (Seq NextSeq), and
	// OpenDiscontinuity tells whether that segment will be a Discontinuity.
	Open              []*Part
	OpenDiscontinuity bool

	// NextSeq is the Seq of the segment being written; NextPart the Number of the next part.
	NextSeq  uint64
	NextPart uint64

	// Init is the newest init segment (nil before the first one).
	Init *Init

	// Session is the number of the current publisher session, SessionStart the Start of
	// its first part.
	Session      int
	SessionStart time.Duration

	// Epoch is the wall-clock time of the first segment's Start. It never changes.
	Epoch time.Time

	// MaxPartDuration and MaxSegmentDuration are the longest part and segment produced
	// since the Stream started. They never decrease.
	MaxPartDuration    time.Duration
	MaxSegmentDuration time.Duration

	// Ended is set when no more media will come: the stream ended, or the Stream stopped
	// (idle or shut down). The last part and segment are then finished.
	Ended bool

	// Changed is closed when a newer State replaces this one.
	Changed <-chan struct{}

	memo memo
}

// Window returns the finished segments that playlists and manifests list.
func (st *State) Window() []*Segment { return st.Segments[st.Listed:] }

// Last returns the newest finished segment, or nil.
func (st *State) Last() *Segment {
	if len(st.Segments) == 0 {
		return nil
	}
	return st.Segments[len(st.Segments)-1]
}

// Segment returns the finished segment seq, or nil when it is gone or not finished.
func (st *State) Segment(seq uint64) *Segment {
	if len(st.Segments) == 0 || seq < st.Segments[0].Seq {
		return nil
	}
	i := seq - st.Segments[0].Seq
	if i >= uint64(len(st.Segments)) {
		return nil
	}
	return st.Segments[i]
}

// Part returns the part with the given Number, or nil when it is gone or not there yet.
func (st *State) Part(number uint64) *Part {
	if len(st.Parts) == 0 || number < st.Parts[0].Number {
		return nil
	}
	i := number - st.Parts[0].Number
	if i >= uint64(len(st.Parts)) {
		return nil
	}
	return st.Parts[i]
}

// HasPart reports whether part index of segment msn exists, with the LL-HLS rule that an
// index past the last part of a finished segment means part 0 of the next segment. Parts
// of segments that left memory count as existing.
func (st *State) HasPart(msn uint64, index int) bool {
	for {
		if msn == st.NextSeq {
			return index < len(st.Open)
		}
		if msn > st.NextSeq {
			return false
		}
		seg := st.Segment(msn)
		if seg == nil || index < len(seg.Parts) {
			return true // gone long ago, or there
		}
		msn, index = msn+1, 0
	}
}

// Memo returns the value cached on the State under key, calling f to make it the first
// time. Consumers cache what they render from a State (playlists, manifests) this way,
// so that it is rendered once per change; key should be a value of a type private to
// the caller.
func (st *State) Memo(key any, f func() any) any { return st.memo.get(key, f) }

// memo is a small concurrent cache; f runs once per key.
type memo struct {
	mu sync.Mutex
	m  map[any]*memoEntry
}

type memoEntry struct {
	once sync.Once
	v    any
}

func (m *memo) get(key any, f func() any) any {
	m.mu.Lock()
	if m.m == nil {
		m.m = make(map[any]*memoEntry, 2)
	}
	e := m.m[key]
	if e == nil {
		e = &memoEntry{}
		m.m[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v = f() })
	return e.v
}
