package hls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// keepSegments is how many segments stay fetchable after they leave the playlist window,
// for players that loaded the playlist just before it slid.
const keepSegments = 4

// errIdle ends a muxer that nobody requested for Server.IdleTimeout.
var errIdle = errors.New("idle")

// segmenter encodes one publisher session's units into the bytes of one segment format.
// The muxer decides where segments start and end (cut policy, timing, playlist); a
// segmenter knows only its container. TS is the one format today (segmenter_ts.go).
type segmenter interface {
	// uses reports whether units of the hub track are written (tracks the format cannot
	// carry are left out).
	uses(track int) bool
	// lead returns the track whose units start segments, and whether it is video (cut on
	// key units) or audio (cut by duration).
	lead() (track int, video bool)
	// begin starts a new segment in buf (empty, with room for the expected size), which
	// finish returns.
	begin(buf []byte)
	// write adds a unit of a used track to the current segment.
	write(u *unit.Unit) error
	// size returns the bytes held for the current segment.
	size() int
	// finish ends the current segment and returns its bytes, which the caller owns.
	finish() ([]byte, error)
}

// segment is one finished media segment, immutable once published. Its bytes go back to
// the muxer's buffer pool once it left the muxer's list and no request is sending it.
type segment struct {
	seq           uint64
	name          string // "{muxerID}-{seq}.ts"
	etag          string
	duration      time.Duration
	start         time.Time // wall clock of the first sample (EXT-X-PROGRAM-DATE-TIME)
	discontinuity bool      // an EXT-X-DISCONTINUITY precedes it
	data          []byte

	refs     atomic.Int32 // requests sending data
	retired  atomic.Bool  // gone from the muxer's list
	recycled atomic.Bool  // data went back to the pool (once)
	pool     chan []byte
}

// release ends a request's use of the segment (see muxer.segment).
func (sg *segment) release() {
	if sg.refs.Add(-1) == 0 && sg.retired.Load() {
		sg.recycle()
	}
}

// retire takes the segment out of the muxer's list (under the muxer's mu).
func (sg *segment) retire() {
	sg.retired.Store(true)
	if sg.refs.Load() == 0 {
		sg.recycle()
	}
}

// recycle gives data to the pool, once, when the pool has room.
func (sg *segment) recycle() {
	if sg.pool == nil || !sg.recycled.CompareAndSwap(false, true) {
		return
	}
	select {
	case sg.pool <- sg.data[:0]:
	default:
	}
	sg.data = nil
}

// openSegment is the segment being written by the run loop.
type openSegment struct {
	open          bool
	start         time.Duration
	wall          time.Time
	discontinuity bool
}

// muxer turns one channel's hub stream into a live playlist and in-memory segments.
// Its run goroutine reads the hub reader and is the only writer of segments; requests
// read the published state under mu and wait on the changed channel.
type muxer struct {
	s      *Server
	name   string
	id     string
	stream *hub.Stream
	reader *hub.Reader
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	lastRequest atomic.Int64 // Server.Now() in unix nanoseconds
	waiters     atomic.Int32 // playlist requests waiting for the first segment; they keep the muxer alive

	// run-loop state
	seg         segmenter
	lastDTS     []time.Duration // per hub track of the session
	lastDur     []time.Duration // per hub track: last DTS step, estimates a unit's duration
	seen        []bool
	cur         openSegment
	pendingDisc bool
	anchored    bool
	anchorWall  time.Time
	anchorDTS   time.Duration
	endWall     time.Time // wall clock at the end of the last segment
	lastSize    int
	writeErrors int
	muxTime     time.Duration // spent muxing the open segment

	// bufs holds the byte buffers of retired segments for the next ones: segments are
	// hundreds of kilobytes, and a fresh buffer per segment costs page faults and
	// clearing (with 20 publishers, ~9 % of the server's CPU).
	bufs chan []byte

	mu          sync.Mutex
	segs        []*segment // finished segments, oldest first: the window plus keepSegments
	nextSeq     uint64
	discBase    uint64 // discontinuities that left segs
	target      int    // EXT-X-TARGETDURATION in seconds; it never decreases
	playlist    []byte // rendered once per change; nil until the first segment
	changed     chan struct{}
	ended       bool // the playlist carries EXT-X-ENDLIST
	unsupported bool // the current session has no track the format can carry
	closed      bool
}

// muxBatch is the period of a TS muxer's ticks: it muxes what its hub reader holds once
// per tick (see runInner). A segment is published at most this much later.
const muxBatch = 100 * time.Millisecond

func newMuxer(s *Server, name string, st *hub.Stream, r *hub.Reader, id string) *muxer {
	ctx, cancel := context.WithCancel(s.ctx)
	m := &muxer{
		s:       s,
		name:    name,
		id:      id,
		stream:  st,
		reader:  r,
		logger:  s.Logger.With("channel", name, "muxer_id", id),
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		target:  ceilSeconds(s.SegmentDuration),
		bufs:    make(chan []byte, 2),
	}
	m.touch(s.Now())
	return m
}

func (m *muxer) touch(now time.Time) { m.lastRequest.Store(now.UnixNano()) }

func (m *muxer) run() {
	defer m.s.wg.Done()
	defer m.cancel()

	reason := m.runInner()
	m.reader.Close()
	switch {
	case errors.Is(reason, hub.ErrStreamEnded):
		m.finalize()
		m.linger()
	case errors.Is(reason, context.Canceled):
		// Server.Close: players get a final playlist.
		m.finalize()
	}
	m.s.remove(m)
	m.shut()

	m.mu.Lock()
	produced := m.nextSeq
	m.mu.Unlock()
	m.logger.Info("muxer destroyed", "reason", reason.Error(), "segments", produced,
		"dropped", m.reader.Dropped(), "write_errors", m.writeErrors)
}

func (m *muxer) runInner() error {
	idle := time.NewTimer(m.s.IdleTimeout)
	defer idle.Stop()
	var evs []hub.Event
	var batch *time.Timer
	for {
		for {
			var err error
			evs, err = m.reader.TryReadBatch(evs[:0])
			n := len(evs)
			for i := range evs {
				m.handle(evs[i])
			}
			clear(evs)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		// A TS segment is published only when it is complete, so units need not be muxed as
		// they arrive: they gather in the hub queue (which holds far more than a tick's
		// units) and are muxed in one go at the next muxBatch tick, shared by every muxer
		// (hub.UntilTick). One wake-up per tick, not one per unit nor one per hub
		// notification; a segment is published at most muxBatch late, and the stream's end
		// is seen at the next tick.
		if batch == nil {
			batch = time.NewTimer(hub.UntilTick(muxBatch))
			defer batch.Stop()
		} else {
			batch.Reset(hub.UntilTick(muxBatch))
		}
		select {
		case <-m.ctx.Done():
			return m.ctx.Err()
		case <-idle.C:
			rem := m.s.idleRemaining(m)
			if rem <= 0 {
				return errIdle
			}
			idle.Reset(rem)
		case <-batch.C:
		}
	}
}

// linger keeps serving the final playlist of an ended stream until it is idle, it is
// EndedTimeout old, or the muxer is cancelled.
func (m *muxer) linger() {
	idle := time.NewTimer(m.s.IdleTimeout)
	defer idle.Stop()
	end := time.NewTimer(m.s.EndedTimeout)
	defer end.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-end.C:
			return
		case <-idle.C:
			rem := m.s.idleRemaining(m)
			if rem <= 0 {
				return
			}
			idle.Reset(rem)
		}
	}
}

func (m *muxer) handle(ev hub.Event) {
	switch {
	case ev.Tracks != nil:
		m.startSession(ev.Tracks)
	case ev.Unit != nil:
		m.writeUnit(ev.Unit)
	}
}

// startSession begins a publisher session: the open segment is closed, the next one is
// marked as a discontinuity, and a new segmenter (new PAT/PMT) takes the new tracks.
func (m *muxer) startSession(tracks []*unit.Track) {
	m.closeSegment(0, true)
	m.mu.Lock()
	if m.nextSeq > 0 {
		m.pendingDisc = true
	}
	m.mu.Unlock()
	m.cur = openSegment{}
	m.anchored = false
	m.lastDTS = make([]time.Duration, len(tracks))
	m.lastDur = make([]time.Duration, len(tracks))
	m.seen = make([]bool, len(tracks))

	seg, err := newTSSegmenter(tracks, m.seg)
	if err != nil {
		m.seg = nil
		m.logger.Warn("no track fits hls", "err", err, "tracks", codecNames(tracks))
	} else {
		m.seg = seg
	}
	m.mu.Lock()
	m.unsupported = m.seg == nil
	m.signalLocked()
	m.mu.Unlock()
}

func (m *muxer) writeUnit(u *unit.Unit) {
	if m.seg == nil || u.Track < 0 || u.Track >= len(m.seen) || !m.seg.uses(u.Track) {
		return
	}
	lead, leadVideo := m.seg.lead()
	isLead := u.Track == lead
	switch {
	case !m.cur.open:
		// A segment starts on a lead key unit: video before it cannot be decoded, and
		// audio before it would start the timeline early.
		if !isLead || (leadVideo && !u.Key) {
			return
		}
		m.beginSegment(u.DTS, u.Received)
	case isLead && (u.Key || !leadVideo) && u.DTS-m.cur.start >= m.s.SegmentDuration:
		m.closeSegment(u.DTS, false)
		m.beginSegment(u.DTS, u.Received)
	case m.seg.size()+u.Size > m.s.MaxSegmentSize:
		// A GOP too large for memory: cut anyway, wherever.
		end := max(u.DTS, m.cur.start)
		m.closeSegment(end, false)
		m.beginSegment(end, u.Received)
	}

	if m.seen[u.Track] && u.DTS > m.lastDTS[u.Track] {
		m.lastDur[u.Track] = u.DTS - m.lastDTS[u.Track]
	}
	m.lastDTS[u.Track] = u.DTS
	m.seen[u.Track] = true

	start := time.Now()
	err := m.seg.write(u)
	m.muxTime += time.Since(start)
	if err != nil {
		m.writeErrors++
		if m.writeErrors == 1 {
			m.logger.Warn("unit dropped", "err", err, "track", u.Track)
		}
	}
}

func (m *muxer) beginSegment(dts time.Duration, received time.Time) {
	if !m.anchored {
		// Each session maps its timeline to the wall clock anew, from the time the hub
		// received the unit (not now: the first units may come from the GOP cache);
		// program date-times never go back, also when a session was written faster
		// than real time.
		m.anchored = true
		m.anchorWall = received
		if received.IsZero() {
			m.anchorWall = m.s.Now()
		}
		if m.anchorWall.Before(m.endWall) {
			m.anchorWall = m.endWall
		}
		m.anchorDTS = dts
	}
	m.cur = openSegment{
		open:          true,
		start:         dts,
		wall:          m.anchorWall.Add(dts - m.anchorDTS),
		discontinuity: m.pendingDisc,
	}
	m.pendingDisc = false
	m.seg.begin(m.buffer(m.lastSize))
}

// buffer returns an empty buffer for a segment of about size bytes: a pooled one when it
// holds size, else a new one with a quarter more room, so that segments a little bigger
// than the last still fit and their buffers stay in the pool.
func (m *muxer) buffer(size int) []byte {
	for {
		select {
		case b := <-m.bufs:
			if cap(b) >= size {
				return b
			}
			continue // too small for this stream now: let the GC have it
		default:
		}
		return make([]byte, 0, max(size+size/4, 64<<10))
	}
}

// closeSegment finishes the open segment at end, or, when estimate is set (no next
// unit to take the end from), at the last unit's DTS plus its estimated duration.
func (m *muxer) closeSegment(end time.Duration, estimate bool) {
	if !m.cur.open {
		return
	}
	cur := m.cur
	m.cur.open = false
	start := time.Now()
	data, err := m.seg.finish()
	muxTime := m.muxTime + time.Since(start)
	m.muxTime = 0
	if err != nil {
		m.writeErrors++
		if m.writeErrors == 1 {
			m.logger.Warn("unit dropped", "err", err)
		}
	}
	if estimate {
		end = cur.start
		for i, ok := range m.seen {
			if ok && m.lastDTS[i]+m.lastDur[i] > end {
				end = m.lastDTS[i] + m.lastDur[i]
			}
		}
	}
	dur := end - cur.start
	if dur <= 0 || len(data) == 0 {
		// Nothing playable: drop it, keeping its discontinuity for the next segment.
		select {
		case m.bufs <- data[:0]:
		default:
		}
		if cur.discontinuity {
			m.pendingDisc = true
		}
		return
	}
	m.lastSize = len(data)
	m.endWall = cur.wall.Add(dur)
	if m.s.OnSegment != nil {
		m.s.OnSegment(m.name, muxTime)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	seq := m.nextSeq
	m.nextSeq++
	name := m.id + "-" + strconv.FormatUint(seq, 10) + ".ts"
	m.segs = append(m.segs, &segment{
		seq:           seq,
		name:          name,
		etag:          `"` + m.id + "-" + strconv.FormatUint(seq, 10) + `"`,
		duration:      dur,
		start:         cur.wall,
		discontinuity: cur.discontinuity,
		data:          data,
		pool:          m.bufs,
	})
	for len(m.segs) > m.s.PlaylistSize+keepSegments {
		if m.segs[0].discontinuity {
			m.discBase++
		}
		m.segs[0].retire()
		m.segs[0] = nil
		m.segs = m.segs[1:]
	}
	if t := ceilSeconds(dur); t > m.target {
		m.target = t
	}
	m.renderLocked()
	m.signalLocked()
}

// finalize closes the open segment and marks the playlist ended.
func (m *muxer) finalize() {
	m.closeSegment(0, true)
	m.mu.Lock()
	m.ended = true
	m.renderLocked()
	m.signalLocked()
	m.mu.Unlock()
}

// shut marks the muxer closed, frees its segments and wakes every waiting request.
func (m *muxer) shut() {
	m.mu.Lock()
	m.closed = true
	clear(m.segs)
	m.segs = nil
	m.signalLocked()
	m.mu.Unlock()
}

func (m *muxer) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *muxer) renderLocked() {
	if len(m.segs) == 0 {
		m.playlist = nil
		return
	}
	win := m.segs[max(0, len(m.segs)-m.s.PlaylistSize):]
	disc := m.discBase
	for _, sg := range m.segs[:len(m.segs)-len(win)] {
		if sg.discontinuity {
			disc++
		}
	}
	m.playlist = renderPlaylist(playlist{
		target:        m.target,
		mediaSequence: win[0].seq,
		discSequence:  disc,
		segments:      win,
		ended:         m.ended,
	})
}

// targetDuration returns the playlist's EXT-X-TARGETDURATION in seconds.
func (m *muxer) targetDuration() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.target
}

// isEnded reports whether the muxer's stream has ended.
func (m *muxer) isEnded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended || m.closed
}

// waitPlaylist returns the current playlist, waiting up to wait for the first segment.
// Without a playlist it returns the HTTP status to answer.
func (m *muxer) waitPlaylist(ctx context.Context, wait time.Duration) ([]byte, int) {
	var timeout <-chan time.Time
	for {
		m.mu.Lock()
		pl, changed := m.playlist, m.changed
		gone := m.closed || m.ended || (m.unsupported && len(m.segs) == 0)
		m.mu.Unlock()
		switch {
		case pl != nil:
			return pl, http.StatusOK
		case gone:
			return nil, http.StatusNotFound
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
			m.waiters.Add(1)
			defer m.waiters.Add(-1)
			defer func() { m.touch(m.s.Now()) }() // before the waiter leaves: the wait was activity
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, http.StatusServiceUnavailable
		case <-ctx.Done():
			return nil, http.StatusServiceUnavailable
		}
	}
}

// segment returns the finished segment seq, or nil when it is gone or not there yet.
// The caller calls release when it no longer reads the segment's data.
func (m *muxer) segment(seq uint64) *segment {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.segs) == 0 || seq < m.segs[0].seq {
		return nil
	}
	i := seq - m.segs[0].seq
	if i >= uint64(len(m.segs)) {
		return nil
	}
	m.segs[i].refs.Add(1)
	return m.segs[i]
}

func (m *muxer) info() MuxerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := MuxerInfo{Channel: m.name, ID: m.id, Segments: len(m.segs), Ended: m.ended}
	if len(m.segs) > 0 {
		in.MediaSequence = m.segs[max(0, len(m.segs)-m.s.PlaylistSize)].seq
	}
	for _, sg := range m.segs {
		in.Bytes += len(sg.data)
	}
	return in
}

// ceilSeconds rounds d to milliseconds (the EXTINF precision) and then up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Round(time.Millisecond).Seconds()))
	return max(s, 1)
}

func codecNames(tracks []*unit.Track) string {
	s := ""
	for i, t := range tracks {
		if i > 0 {
			s += ","
		}
		if t == nil {
			s += "nil"
			continue
		}
		s += t.Codec.String()
	}
	return s
}

// newMuxerID returns a random identifier that makes segment names unique per muxer.
func newMuxerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
