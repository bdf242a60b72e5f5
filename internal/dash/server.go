// Package dash serves every live channel of the hub as live MPEG-DASH, from the same
// CMAF bytes as Low-Latency HLS (internal/cmafstream).
//
// A Server is an http.Handler for the paths (the "/dash" prefix may also be stripped by
// the router):
//
//	/dash/time                          the server's clock (ISO 8601), for UTCTiming
//	/dash/{name}/index.mpd              live manifest (type="dynamic")
//	/dash/{name}/{id}-i{n}-t{k}.mp4     init segment n of track k
//	/dash/{name}/{id}-{seq}-t{k}.m4s    media segment seq ($Number$) of track k
//
// {id} is random per segmenter run, so a name always means the same bytes, and media are
// served with immutable cache headers; the manifest is no-cache.
//
// # Manifest
//
// Each track is its own AdaptationSet with one Representation: dash.js refuses
// Representations that multiplex audio and video (DASH-IF IOP), so the track's fragments
// are cut out of the shared multiplexed parts, once per part. The SegmentTemplate uses
// $Number$ with a SegmentTimeline, since segments end at key frames and their durations
// vary. A new Period starts at each publisher reconnect: the mapping of media time to the
// wall clock changes there (the hub rebases timestamps, the gap is not in the media), and
// so may the tracks. $Number$ keeps counting across Periods (startNumber).
//
// Low latency: the segment being written is listed with an estimated duration (the
// previous segment's), with availabilityTimeOffset (that estimate minus one part) and
// availabilityTimeComplete="false", so a low-latency client requests it early; the server
// answers with chunked transfer, sending each CMAF chunk (part) as soon as it exists. A
// request for the next segment waits for its first part. ServiceDescription carries the
// latency target and playback rate range for live catch-up, UTCTiming points to /dash/time.
// When the stream ends, the manifest gets mediaPresentationDuration and no more updates.
package dash

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
)

// Defaults of the Server fields.
const (
	DefaultLatency             = 2 * time.Second
	DefaultMinimumUpdatePeriod = time.Second
	DefaultFirstSegmentWait    = 15 * time.Second
	DefaultTimeURL             = "/dash/time"
)

// Server serves live DASH for the streams of a cmafstream.Manager.
type Server struct {
	// CMAF provides the shared fMP4 segmenters. Required.
	CMAF *cmafstream.Manager

	// Logger receives one line per request (Debug). Default: slog.Default().
	Logger *slog.Logger

	// PartTarget and SegmentTarget should be the CMAF manager's: they size the announced
	// duration of the segment being written and the availabilityTimeOffset.
	// Defaults: cmafstream.DefaultPartTarget and cmafstream.DefaultSegmentTarget.
	PartTarget    time.Duration
	SegmentTarget time.Duration

	// Latency is the target latency of the ServiceDescription (min half, max three times
	// it) and the suggestedPresentationDelay. Default: 2 s.
	Latency time.Duration

	// MinimumUpdatePeriod is how often clients reload the manifest. Default: 1 s.
	MinimumUpdatePeriod time.Duration

	// FirstSegmentWait bounds how long a manifest request waits for the first segment of a
	// stream, and a segment request for the segment to start. Default: 15 s.
	FirstSegmentWait time.Duration

	// TimeURL is the UTCTiming URL as clients see it. Default: "/dash/time".
	TimeURL string

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// Viewers, when set, counts viewers by session: each manifest served touches the
	// session of its "s" query parameter (or of its address and User-Agent) for three
	// reload periods. Default: nil.
	Viewers ViewerSessions

	// Renditions, when set, returns the transcoded renditions of a live stream: their
	// video is listed beside the source's, and served under /dash/{name}/{rendition}/.
	// Default: nil (the source only).
	Renditions func(name string) []Rendition

	// OnRequest, when set, is called after each request with the channel ("" when the
	// path names none), the kind of request (RequestManifest, ...), the status, the body
	// bytes written and the time the request took (a streamed segment's whole transfer).
	// It must not block.
	OnRequest func(channel, kind string, status int, bytes int64, elapsed time.Duration)

	ctx    context.Context
	cancel context.CancelFunc
}

// Start applies the defaults and validates the fields.
func (s *Server) Start() error {
	if s.CMAF == nil {
		return errors.New("dash: cmaf manager is required")
	}
	if s.PartTarget < 0 || s.SegmentTarget < 0 || s.Latency < 0 || s.MinimumUpdatePeriod < 0 || s.FirstSegmentWait < 0 {
		return errors.New("dash: durations must not be negative")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.PartTarget == 0 {
		s.PartTarget = cmafstream.DefaultPartTarget
	}
	if s.SegmentTarget == 0 {
		s.SegmentTarget = cmafstream.DefaultSegmentTarget
	}
	if s.Latency == 0 {
		s.Latency = DefaultLatency
	}
	if s.MinimumUpdatePeriod == 0 {
		s.MinimumUpdatePeriod = DefaultMinimumUpdatePeriod
	}
	if s.FirstSegmentWait == 0 {
		s.FirstSegmentWait = DefaultFirstSegmentWait
	}
	if s.TimeURL == "" {
		s.TimeURL = DefaultTimeURL
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return nil
}

// Close ends the requests still waiting or streaming. The Server owns no goroutine.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
}

// ServeHTTP serves the manifest, segments and clock. See the package documentation.
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
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/dash"); ok && strings.HasPrefix(rest, "/") {
		p = rest
	}
	if p == "/time" {
		s.serveTime(w, r)
		return
	}
	name, file, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	rendition := ""
	if d, rest, found := strings.Cut(file, "/"); found && hub.ValidRendition(d) {
		rendition, file = d, rest // /dash/{name}/{rendition}/{file}: media of a rendition
	}
	if !ok || !strings.HasPrefix(p, "/") || onair.ValidateUsername(name) != nil || file == "" || strings.Contains(file, "/") {
		httpError(w, http.StatusNotFound)
		return
	}
	if rendition != "" {
		f, ok := parseFileName(file)
		if !ok {
			httpError(w, http.StatusNotFound)
			return
		}
		s.serveMedia(w, r, hub.DerivedName(name, rendition), f)
		return
	}
	if file == "index.mpd" {
		s.serveMPD(w, r, name)
		return
	}
	f, ok := parseFileName(file)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	s.serveMedia(w, r, name, f)
}

func (s *Server) serveTime(w http.ResponseWriter, r *http.Request) {
	b := []byte(s.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// mpdKey caches the rendered manifest on a cmafstream State.
type mpdKey struct{}

func (s *Server) serveMPD(w http.ResponseWriter, r *http.Request, name string) {
	cs, err := s.CMAF.Stream(name)
	if err != nil {
		writeStatus(w, statusOf(err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.FirstSegmentWait)
	st, err := cs.Wait(ctx, func(st *cmafstream.State) bool { return len(st.Segments) > 0 })
	cancel()
	if err != nil {
		if errors.Is(err, cmafstream.ErrEnded) {
			writeStatus(w, http.StatusNotFound)
		} else {
			writeStatus(w, http.StatusServiceUnavailable)
		}
		return
	}
	params := mpdParams{
		id:            cs.ID(),
		partTarget:    s.PartTarget,
		segmentTarget: s.SegmentTarget,
		latency:       s.Latency,
		updatePeriod:  s.MinimumUpdatePeriod,
		timeURL:       s.TimeURL,
	}
	var b []byte
	if params.renditions = s.renditionStates(name); len(params.renditions) > 0 {
		b = renderMPD(st, params) // the renditions change on their own: no cache
	} else {
		b = st.Memo(mpdKey{}, func() any { return renderMPD(st, params) }).([]byte)
	}
	h := w.Header()
	h.Set("Content-Type", "application/dash+xml")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// file is a parsed media file name: "{id}-i{n}-t{k}.mp4" or "{id}-{seq}-t{k}.m4s".
type file struct {
	id    string
	init  bool
	num   uint64
	track int
}

func parseFileName(name string) (file, bool) {
	var f file
	base, ok := strings.CutSuffix(name, ".m4s")
	if !ok {
		if base, ok = strings.CutSuffix(name, ".mp4"); !ok {
			return f, false
		}
		f.init = true
	}
	if len(base) < 18 || base[16] != '-' || !isHex(base[:16]) {
		return f, false
	}
	f.id = base[:16]
	num, track, ok := strings.Cut(base[17:], "-t")
	if !ok {
		return f, false
	}
	if f.init {
		if num, ok = strings.CutPrefix(num, "i"); !ok {
			return f, false
		}
	}
	n, ok := parseDecimal(num)
	if !ok {
		return f, false
	}
	k, ok := parseDecimal(track)
	if !ok || k > 1<<10 || (f.init && n > 1<<31) {
		return f, false
	}
	f.num, f.track = n, int(k)
	return f, true
}

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request, name string, f file) {
	cs, err := s.CMAF.Stream(name)
	if err != nil || cs.ID() != f.id {
		httpError(w, http.StatusNotFound)
		return
	}
	st := cs.State()
	if f.init {
		in := findInit(st, int(f.num))
		if in == nil {
			httpError(w, http.StatusNotFound)
			return
		}
		b, err := in.Track(f.track)
		if err != nil {
			httpError(w, http.StatusNotFound)
			return
		}
		cmafstream.ServeBytes(w, r, contentType(in, f.track), etag(f), [][]byte{b})
		return
	}
	if sg := st.Segment(f.num); sg != nil {
		if f.track >= len(sg.Init.Tracks) {
			httpError(w, http.StatusNotFound)
			return
		}
		cmafstream.ServeBytes(w, r, contentType(sg.Init, f.track), etag(f), sg.TrackChunks(f.track))
		return
	}
	if st.Ended || f.num < st.NextSeq || f.num > st.NextSeq+1 {
		httpError(w, http.StatusNotFound)
		return
	}
	s.streamSegment(w, r, cs, f)
}

// streamSegment sends a segment that is being written (or the next one) with chunked
// transfer: each part of the track as soon as it exists, until the segment is finished.
func (s *Server) streamSegment(w http.ResponseWriter, r *http.Request, cs *cmafstream.Stream, f file) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	// Wait for the segment's first part.
	wait, cancelWait := context.WithTimeout(ctx, s.FirstSegmentWait)
	st, err := cs.Wait(wait, func(st *cmafstream.State) bool {
		return st.NextSeq > f.num || (st.NextSeq == f.num && len(st.Open) > 0)
	})
	cancelWait()
	if err != nil && !errors.Is(err, cmafstream.ErrEnded) {
		writeStatus(w, http.StatusServiceUnavailable)
		return
	}
	parts, done := segmentParts(st, f.num)
	if len(parts) == 0 || f.track >= len(parts[0].Init.Tracks) {
		httpError(w, http.StatusNotFound)
		return
	}
	if done {
		sg := st.Segment(f.num)
		cmafstream.ServeBytes(w, r, contentType(sg.Init, f.track), etag(f), sg.TrackChunks(f.track))
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(parts[0].Init, f.track))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag(f))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	sent := 0
	// A segment lasts about SegmentTarget; give it plenty, bounded.
	deadline := time.Now().Add(4*s.SegmentTarget + s.FirstSegmentWait)
	for {
		for _, pt := range parts[sent:] {
			if d := pt.Track(f.track).Data; d != nil {
				if _, err := w.Write(d); err != nil {
					return
				}
			}
		}
		sent = len(parts)
		if done {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		wait, cancelWait := context.WithDeadline(ctx, deadline)
		st, err = cs.Wait(wait, func(st *cmafstream.State) bool {
			p, d := segmentParts(st, f.num)
			return d || len(p) > sent
		})
		cancelWait()
		parts, done = segmentParts(st, f.num)
		if err != nil && !errors.Is(err, cmafstream.ErrEnded) {
			return // the response ends early; the client retries
		}
		if errors.Is(err, cmafstream.ErrEnded) {
			done = true
		}
	}
}

// segmentParts returns the parts of segment seq that st has, and whether it is finished.
func segmentParts(st *cmafstream.State, seq uint64) ([]*cmafstream.Part, bool) {
	if sg := st.Segment(seq); sg != nil {
		return sg.Parts, true
	}
	if st.NextSeq == seq {
		return st.Open, false
	}
	return nil, false
}

func findInit(st *cmafstream.State, seq int) *cmafstream.Init {
	if st.Init != nil && st.Init.Seq == seq {
		return st.Init
	}
	for _, sg := range st.Segments {
		if sg.Init.Seq == seq {
			return sg.Init
		}
	}
	return nil
}

func contentType(in *cmafstream.Init, track int) string {
	if track < len(in.Tracks) && in.Tracks[track].IsVideo() {
		return "video/mp4"
	}
	return "audio/mp4"
}

func etag(f file) string {
	kind := "s"
	if f.init {
		kind = "i"
	}
	return `"` + f.id + "-" + kind + strconv.FormatUint(f.num, 10) + "-t" + strconv.Itoa(f.track) + `"`
}

func statusOf(err error) int {
	if errors.Is(err, cmafstream.ErrClosed) {
		return http.StatusServiceUnavailable
	}
	return http.StatusNotFound
}

func writeStatus(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpError(w, status)
}

func httpError(w http.ResponseWriter, status int) {
	http.Error(w, http.StatusText(status), status)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseDecimal parses a canonical unsigned decimal (no sign, no leading zero).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// statusWriter records the status code and the body bytes written, for the request log
// and OnRequest.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
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
