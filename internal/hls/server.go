// Package hls serves every live channel of the hub as HTTP Live Streaming: Low-Latency
// HLS over fMP4/CMAF by default, and HLS over MPEG-TS for old devices and MP3 audio.
//
// A Server is an http.Handler for the paths (the "/hls" prefix may also be stripped by
// the router):
//
//	/hls/{name}/index.m3u8             multivariant playlist: the entry point players open
//	/hls/{name}/stream.m3u8            LL-HLS media playlist (fMP4, RFC 8216bis)
//	/hls/{name}/{id}-i{n}.mp4          fMP4 init segment n
//	/hls/{name}/{id}-{seq}.m4s         fMP4 media segment seq (its media sequence number)
//	/hls/{name}/{id}-p{num}.m4s        fMP4 partial segment num (numbered across segments)
//	/hls/{name}/ts/index.m3u8          MPEG-TS media playlist (RFC 8216)
//	/hls/{name}/ts/{id}-{seq}.ts       MPEG-TS segment
//
// {id} is random per segmenter run, so a name always means the same bytes: segments and
// parts are served from memory with immutable cache headers, playlists with no-cache.
//
// The multivariant playlist has one variant with CODECS, RESOLUTION and BANDWIDTH. It
// points to the fMP4 rendition (stream.m3u8), except when a track is MP3 (Chromium's
// MediaSource cannot play MP3 in fMP4, hls.js plays it from MPEG-TS) or when the Server
// has no CMAF manager: then it points to ts/index.m3u8. Both renditions can always be
// opened directly.
//
// # fMP4 / Low-Latency HLS
//
// The fMP4 bytes come from the channel's shared CMAF segmenter (internal/cmafstream), the
// same bytes DASH serves. The media playlist carries EXT-X-PART for the segments of the
// last three target durations, EXT-X-PRELOAD-HINT for the next part, EXT-X-SERVER-CONTROL
// with CAN-BLOCK-RELOAD and PART-HOLD-BACK (three part targets), and CAN-SKIP-UNTIL (six
// target durations) once the window is longer than that. Blocking playlist reload
// (_HLS_msn, _HLS_part) answers as soon as the asked-for part exists, 400 for a request
// too far ahead and 503 after three target durations; a hinted part request waits for the
// part the same way. Delta updates (_HLS_skip=YES or v2) replace the older segments with
// EXT-X-SKIP. Each playlist variant is rendered once per segmenter change and cached.
// A publisher reconnect continues the playlist after EXT-X-DISCONTINUITY (and a new
// EXT-X-MAP when the tracks changed); the end of the stream adds EXT-X-ENDLIST.
// H.264, H.265, AV1, AAC, Opus and MP3 are carried.
//
// # MPEG-TS
//
// A TS muxer per channel starts on the first TS playlist request: it attaches a hub
// Reader, whose queue starts with the stream's cached GOP, cuts segments at keyframes
// once they reach SegmentDuration, keeps them in memory, and renders the playlist once
// per change. It stops after IdleTimeout without requests. Playlist requests wait for the
// first segment on a channel that the muxer closes at each change. Codecs: H.264, H.265,
// AAC, MP3 (MPEG-1 Layer III) and Opus; AV1 cannot be carried in MPEG-TS, so a stream with
// AV1 video is served with its audio only, and answers 404 when nothing is left. A
// publisher reconnect inside the hub's grace window continues the same playlist after an
// EXT-X-DISCONTINUITY; the end of a stream adds EXT-X-ENDLIST.
package hls

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
)

// Server serves live HLS for the streams of a hub.Registry.
type Server struct {
	// Hub is the registry of live streams. Required.
	Hub *hub.Registry

	// CMAF provides the shared fMP4 segmenters. Without it only MPEG-TS is served and
	// index.m3u8 points to it.
	CMAF *cmafstream.Manager

	// PartTarget is the PART-TARGET advertised for LL-HLS: set it to the CMAF manager's
	// PartTarget. A longer part raises it. Default: cmafstream.DefaultPartTarget.
	PartTarget time.Duration

	// Logger receives lifecycle logs (Info) and one line per request (Debug).
	// Default: slog.Default().
	Logger *slog.Logger

	// SegmentDuration is the MPEG-TS target segment duration: a segment is cut at the first video
	// key unit (audio unit for audio-only streams) at least this far from its start, so a
	// long GOP makes longer segments. Default: 1 s.
	SegmentDuration time.Duration

	// PlaylistSize is the number of segments in the MPEG-TS playlist's sliding window.
	// (The fMP4 window is the CMAF manager's.) Default: 6.
	PlaylistSize int

	// IdleTimeout closes a TS muxer that received no request for this long. Default: 30 s.
	IdleTimeout time.Duration

	// FirstSegmentWait bounds how long a playlist request waits for the first segment of
	// a new muxer (a long GOP, like x264's default of 250 frames, needs a while). After it
	// the answer is 503 with Retry-After. Default: 15 s.
	FirstSegmentWait time.Duration

	// EndedTimeout is how long the final playlist (with EXT-X-ENDLIST) of an ended stream
	// is served at most; the muxer also goes earlier when idle. Default: 60 s.
	EndedTimeout time.Duration

	// MaxSegmentSize cuts a segment that grows past this many bytes even without a
	// keyframe. Default: 64 MiB.
	MaxSegmentSize int

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// Viewers, when set, counts viewers by session: the multivariant playlist hands each
	// player a session id in its variant URI (stream.m3u8?s=ID, or ts/index.m3u8?s=ID; the
	// multivariant request's own "s" is kept), and every media playlist served touches
	// the session for three target durations. Segments and parts carry no id, so they
	// stay shareable by caches. Default: nil (no counting, no ids in URIs).
	Viewers ViewerSessions

	// OnRequest, when set, is called after each request with the channel ("" when the
	// path names none), the kind of request (RequestMultivariant, ...), the status, the
	// body bytes written and the time the request took. It must not block.
	OnRequest func(channel, kind string, status int, bytes int64, elapsed time.Duration)

	// Renditions, when set, returns the transcoded renditions of a live stream (see
	// Rendition). The multivariant playlist then lists them after the source, each served
	// under /hls/{name}/{rendition}/. Default: nil (the source only).
	Renditions func(name string) []Rendition

	// OnSegment, when set, is called by a TS muxer for each segment it finishes, with the
	// time spent muxing it. It must not block.
	OnSegment func(channel string, elapsed time.Duration)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	muxers map[string]*muxer
	closed bool
}

// MuxerInfo describes a running muxer.
type MuxerInfo struct {
	Channel string
	// ID is the random muxer id that prefixes its segment names.
	ID string
	// MediaSequence is the sequence number of the first segment in the playlist.
	MediaSequence uint64
	// Segments is the number of segments held in memory, Bytes their size.
	Segments int
	Bytes    int
	// Ended is set once the stream ended and the playlist carries EXT-X-ENDLIST.
	Ended bool
}

// Start applies defaults and validates the fields.
func (s *Server) Start() error {
	if s.Hub == nil {
		return errors.New("hls: hub is required")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.SegmentDuration < 0 || s.PartTarget < 0 || s.IdleTimeout < 0 || s.FirstSegmentWait < 0 || s.EndedTimeout < 0 ||
		s.PlaylistSize < 0 || s.MaxSegmentSize < 0 {
		return errors.New("hls: durations and sizes must not be negative")
	}
	if s.SegmentDuration == 0 {
		s.SegmentDuration = time.Second
	}
	if s.PartTarget == 0 {
		s.PartTarget = cmafstream.DefaultPartTarget
	}
	if s.PlaylistSize == 0 {
		s.PlaylistSize = 6
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 30 * time.Second
	}
	if s.FirstSegmentWait == 0 {
		s.FirstSegmentWait = 15 * time.Second
	}
	if s.EndedTimeout == 0 {
		s.EndedTimeout = 60 * time.Second
	}
	if s.MaxSegmentSize == 0 {
		s.MaxSegmentSize = 64 << 20
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.muxers = make(map[string]*muxer)
	return nil
}

// Close ends every muxer, each with a final playlist (EXT-X-ENDLIST) for the requests
// still in flight, and waits for their goroutines. Later requests get 503.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || s.muxers == nil {
		s.closed = true
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Muxers returns the running muxers sorted by channel.
func (s *Server) Muxers() []MuxerInfo {
	s.mu.Lock()
	ms := make([]*muxer, 0, len(s.muxers))
	for _, m := range s.muxers {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	out := make([]MuxerInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// ServeHTTP serves playlists and segments. See the package documentation for paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.serve(sw, r)
	s.observe(r, sw, time.Since(start))
	s.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	name, dir, file, ok := splitPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	if dir == "ts" {
		if file == "index.m3u8" {
			s.servePlaylist(w, r, name)
			return
		}
		id, seq, ok := parseSegmentName(file)
		if !ok {
			httpError(w, http.StatusNotFound)
			return
		}
		s.serveSegment(w, r, name, id, seq)
		return
	}
	if dir != "" {
		// A rendition is served like a stream of its own, from its derived hub stream.
		if file == "index.m3u8" {
			httpError(w, http.StatusNotFound)
			return
		}
		name = hub.DerivedName(name, dir)
	}
	switch file {
	case "index.m3u8":
		s.serveMultivariant(w, r, name)
	case "stream.m3u8":
		s.serveMediaPlaylist(w, r, name)
	default:
		f, ok := parseFMP4Name(file)
		if !ok {
			httpError(w, http.StatusNotFound)
			return
		}
		s.serveFMP4(w, r, name, f)
	}
}

func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request, name string) {
	s.Hub.Lookup(r.Context(), name) // outside muxerFor's lock: a cluster relay may pull it first
	m, status := s.muxerFor(name, true)
	if m == nil {
		httpError(w, status)
		return
	}
	b, status := m.waitPlaylist(r.Context(), s.FirstSegmentWait)
	if b == nil {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		httpError(w, status)
		return
	}
	setTarget(w, m.targetDuration())
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

func (s *Server) serveSegment(w http.ResponseWriter, r *http.Request, name, id string, seq uint64) {
	m, status := s.muxerFor(name, false)
	if m == nil {
		httpError(w, status)
		return
	}
	var sg *segment
	if m.id == id {
		sg = m.segment(seq)
	}
	if sg == nil {
		httpError(w, http.StatusNotFound)
		return
	}
	defer sg.release()
	cmafstream.ServeBytes(w, r, "video/mp2t", sg.etag, [][]byte{sg.data})
}

// muxerFor returns the channel's muxer and marks it requested. With create it starts
// one when the channel is live. Without a muxer it returns the HTTP status to answer.
func (s *Server) muxerFor(name string, create bool) (*muxer, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.muxers == nil {
		return nil, http.StatusServiceUnavailable
	}
	m := s.muxers[name]
	if m != nil && create && m.isEnded() {
		// The stream ended and the channel went live again: the new stream gets a new muxer.
		if st := s.Hub.Stream(name); st != nil && st != m.stream {
			delete(s.muxers, name)
			m.cancel()
			m = nil
		}
	}
	if m == nil {
		if !create {
			return nil, http.StatusNotFound
		}
		st := s.Hub.Stream(name)
		if st == nil || !anySupported(st) {
			return nil, http.StatusNotFound
		}
		r, err := st.AddReader("hls")
		if err != nil {
			return nil, http.StatusNotFound
		}
		m = newMuxer(s, name, st, r, newMuxerID())
		s.muxers[name] = m
		m.logger.Info("muxer created")
		s.wg.Add(1)
		go m.run()
	}
	m.touch(s.Now())
	return m, http.StatusOK
}

// idleRemaining returns how long m still has before it is idle. At zero or less it has
// been removed from the map, so that no request finds it any more.
func (s *Server) idleRemaining(m *muxer) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.waiters.Load() > 0 {
		return s.IdleTimeout
	}
	rem := time.Duration(m.lastRequest.Load()+int64(s.IdleTimeout)) - time.Duration(s.Now().UnixNano())
	if rem > 0 {
		return rem
	}
	if s.muxers[m.name] == m {
		delete(s.muxers, m.name)
	}
	return 0
}

func (s *Server) remove(m *muxer) {
	s.mu.Lock()
	if s.muxers[m.name] == m {
		delete(s.muxers, m.name)
	}
	s.mu.Unlock()
}

func anySupported(st *hub.Stream) bool {
	for _, t := range st.Tracks() {
		if t != nil && tsSupports(t.Codec) {
			return true
		}
	}
	return false
}

// splitPath splits "/hls/{name}/{file}" and "/hls/{name}/ts/{file}" (or the same under a
// stripped prefix) into the channel name, the directory ("" or "ts") and the file.
func splitPath(p string) (name, dir, file string, ok bool) {
	if rest, found := strings.CutPrefix(p, "/hls/"); found {
		p = rest
	} else if rest, found := strings.CutPrefix(p, "/"); found {
		p = rest
	} else {
		return "", "", "", false
	}
	name, file, ok = strings.Cut(p, "/")
	if !ok || onair.ValidateUsername(name) != nil {
		return "", "", "", false
	}
	if rest, found := strings.CutPrefix(file, "ts/"); found {
		dir, file = "ts", rest
	} else if d, rest, found := strings.Cut(file, "/"); found && hub.ValidRendition(d) {
		dir, file = d, rest // a rendition: /hls/{name}/{rendition}/stream.m3u8, …
	}
	if file == "" || strings.Contains(file, "/") {
		return "", "", "", false
	}
	return name, dir, file, true
}

// parseSegmentName parses "{16 lowercase hex}-{seq}.ts", seq in canonical decimal.
func parseSegmentName(file string) (id string, seq uint64, ok bool) {
	base, found := strings.CutSuffix(file, ".ts")
	if !found || len(base) < 18 || base[16] != '-' {
		return "", 0, false
	}
	id, num := base[:16], base[17:]
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", 0, false
		}
	}
	if len(num) > 1 && num[0] == '0' {
		return "", 0, false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return "", 0, false
		}
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id, seq, true
}

func httpError(w http.ResponseWriter, status int) {
	http.Error(w, http.StatusText(status), status)
}

// statusWriter records the status code and the body bytes written, for the request log
// and OnRequest, and the target duration of a media playlist served, for Viewers.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	target time.Duration
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
