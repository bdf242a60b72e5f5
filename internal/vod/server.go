// Package vod serves recordings over HTTP: replays as HLS (the stored VOD playlist) and
// DASH (a static MPD whose per-track segments are cut from the stored ones on request),
// a download as one progressive MP4 (remuxed on the fly, with Range support), the live
// DVR (the running recording's EVENT playlist, seekable back to the start of the
// broadcast), and the recordings part of the JSON API.
//
// # Paths
//
// Media, public, without authentication (mount at "/vod/" outside the auth middleware,
// like /hls/):
//
//	GET /vod/{id}/index.m3u8            HLS playlist: EVENT while recording, VOD after
//	GET /vod/{id}/index.mpd             static DASH MPD (once the recording ended)
//	GET /vod/{id}/init-{k}.mp4          init segment k
//	GET /vod/{id}/seg-{n}.m4s           segment n (CMAF: every track)
//	GET /vod/{id}/init-{k}-t{t}.mp4     DASH: init segment k, track t only
//	GET /vod/{id}/seg-{n}-t{t}.m4s      DASH: segment n, track t only
//	GET /vod/{id}/download.mp4          the whole recording as one MP4 (Range supported)
//	GET /vod/{id}/poster.jpg            the poster (one frame), once the recording ended
//	GET /vod/live/{username}/index.m3u8 DVR: the channel's running recording
//
// JSON API, behind the auth middleware (CurrentUser must see its user; PATCH and DELETE
// are state-changing, so cookie sessions need the CSRF token there):
//
//	GET    /api/v1/channels/{username}/recordings   newest first (?offset=, ?limit= up to 100)
//	GET    /api/v1/recordings/{id}
//	PATCH  /api/v1/recordings/{id}  {"title": "…"}  the channel's owner
//	DELETE /api/v1/recordings/{id}                  the owner or an admin
//
// # Views
//
// A view is counted when a viewer first loads the playlist or manifest of a finished
// recording: once per recording, client address and user agent per ViewWindow.
package vod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
)

// LiveRecordings tells which recordings are being written (*record.Recorder).
type LiveRecordings interface {
	// Active returns the id of the channel's running recording.
	Active(channel string) (int64, bool)
	// Writing reports whether the recording is being written.
	Writing(id int64) bool
	// Playlist returns the current EVENT playlist of a running recording.
	Playlist(id int64) ([]byte, bool)
}

// Defaults of the Server fields.
const (
	DefaultViewWindow = time.Hour
	DefaultMaxViews   = 100_000
	DefaultMP4Cache   = 4
)

// Server serves recordings (see the package doc). Set the fields, call Start, serve.
type Server struct {
	// Recordings reads, renames and deletes recordings. Required.
	Recordings onair.RecordingService

	// Storage holds the recordings' media. Required.
	Storage record.Storage

	// Live tells which recordings are running. Default: none (no DVR, every playlist is
	// served as ended).
	Live LiveRecordings

	// CurrentUser returns the signed-in user of an API request, or nil (the app passes
	// auth.UserFromContext on the request's context). Required.
	CurrentUser func(*http.Request) *onair.User

	// ClientIP returns the viewer's address for counting views. Default: the host of
	// r.RemoteAddr.
	ClientIP func(*http.Request) string

	// Logger receives the errors of failed requests (500s). Default: discard.
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// ViewWindow is how long a viewer's loads count as one view. Default: 1 h.
	ViewWindow time.Duration

	// MaxViews bounds the viewers remembered for ViewWindow. Default: 100,000.
	MaxViews int

	// MP4Cache is how many prepared MP4 downloads are kept (their headers and sample
	// maps, not their media). Default: 4.
	MP4Cache int

	handler http.Handler
	views   *viewCounter

	mp4Mu   sync.Mutex
	mp4s    []*mp4Entry // most recent last
	started bool
}

type mp4Entry struct {
	id    int64
	bytes int64 // of the recording, to notice a change
	once  sync.Once
	mp4   *record.MP4
	err   error
}

// Start checks the fields, applies the defaults and builds the routes.
func (s *Server) Start() error {
	switch {
	case s.Recordings == nil:
		return errors.New("vod: recording service is required")
	case s.Storage == nil:
		return errors.New("vod: storage is required")
	case s.CurrentUser == nil:
		return errors.New("vod: current user func is required")
	case s.ViewWindow < 0 || s.MaxViews < 0 || s.MP4Cache < 0:
		return errors.New("vod: limits must not be negative")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.ClientIP == nil {
		s.ClientIP = remoteHost
	}
	if s.ViewWindow == 0 {
		s.ViewWindow = DefaultViewWindow
	}
	if s.MaxViews == 0 {
		s.MaxViews = DefaultMaxViews
	}
	if s.MP4Cache == 0 {
		s.MP4Cache = DefaultMP4Cache
	}
	s.views = &viewCounter{window: s.ViewWindow, max: s.MaxViews, now: s.Now, seen: map[viewKey]time.Time{}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /vod/live/{username}/index.m3u8", s.handleDVR)
	mux.HandleFunc("GET /vod/{id}/{name}", s.handleMedia)
	mux.HandleFunc("/vod/", func(w http.ResponseWriter, _ *http.Request) { mediaError(w, http.StatusNotFound) })
	mux.HandleFunc("GET /api/v1/channels/{username}/recordings", s.handleAPIList)
	mux.HandleFunc("GET /api/v1/recordings/{id}", s.handleAPIGet)
	mux.HandleFunc("PATCH /api/v1/recordings/{id}", s.handleAPIRename)
	mux.HandleFunc("DELETE /api/v1/recordings/{id}", s.handleAPIDelete)
	mux.HandleFunc("/api/", s.handleAPINotFound)
	s.handler = mux
	s.started = true
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.started {
		http.Error(w, "server not started", http.StatusServiceUnavailable)
		return
	}
	s.handler.ServeHTTP(w, r)
}

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheFinal     = "public, max-age=300"
	cacheLive      = "no-cache"
)

func mediaError(w http.ResponseWriter, status int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status), status)
}

// mediaFail answers a failed media request: 404 for what does not exist, 500 (logged)
// otherwise.
func (s *Server) mediaFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, record.ErrNotFound) || onair.ErrorCode(err) == onair.ENOTFOUND {
		mediaError(w, http.StatusNotFound)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	mediaError(w, http.StatusInternalServerError)
}

func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0 && strconv.FormatInt(id, 10) == s
}

func (s *Server) writing(id int64) bool { return s.Live != nil && s.Live.Writing(id) }

// handleMedia serves the files of a recording.
func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		mediaError(w, http.StatusNotFound)
		return
	}
	name := r.PathValue("name")
	switch name {
	case record.PlaylistName:
		s.servePlaylist(w, r, id)
		return
	case record.ManifestName:
		s.serveManifest(w, r, id)
		return
	case "download.mp4":
		s.serveDownload(w, r, id)
		return
	case record.PosterName:
		s.servePoster(w, r, id)
		return
	}
	if init, n, track, ok := record.ParseTrackName(name); ok {
		s.serveTrack(w, r, id, init, n, track)
		return
	}
	contentType := ""
	if _, ok := parseIndexName(name, "init-", ".mp4"); ok {
		contentType = "video/mp4"
	} else if _, ok := parseIndexName(name, "seg-", ".m4s"); ok {
		contentType = "video/iso.segment"
	} else {
		mediaError(w, http.StatusNotFound)
		return
	}
	obj, err := s.Storage.Open(r.Context(), id, name)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheImmutable)
	http.ServeContent(w, r, "", obj.Info().ModTime, obj)
}

// servePoster serves the poster the recorder stored when the recording ended.
func (s *Server) servePoster(w http.ResponseWriter, r *http.Request, id int64) {
	obj, err := s.Storage.Open(r.Context(), id, record.PosterName)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", cacheImmutable)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", obj.Info().ModTime, obj)
}

// PosterPath returns the address of a recording's poster, or "" when it has none.
func (s *Server) PosterPath(ctx context.Context, id int64) string {
	if _, err := s.Storage.Stat(ctx, id, record.PosterName); err != nil {
		return ""
	}
	return "/vod/" + strconv.FormatInt(id, 10) + "/" + record.PosterName
}

func parseIndexName(s, prefix, suffix string) (int, bool) {
	if len(s) <= len(prefix)+len(suffix) || s[:len(prefix)] != prefix || s[len(s)-len(suffix):] != suffix {
		return 0, false
	}
	v := s[len(prefix) : len(s)-len(suffix)]
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == v
}

// playlist returns the playlist of a recording: the running recording's EVENT playlist
// from the recorder's memory, or the stored one as a VOD playlist.
func (s *Server) playlist(ctx context.Context, id int64) ([]byte, bool, error) {
	if s.Live != nil {
		if b, ok := s.Live.Playlist(id); ok {
			return b, true, nil
		}
		if s.Live.Writing(id) {
			return nil, true, fmt.Errorf("recording %d has no segment yet: %w", id, record.ErrNotFound)
		}
	}
	b, err := record.ReadAll(ctx, s.Storage, id, record.PlaylistName)
	if err != nil {
		return nil, false, err
	}
	return record.FinalPlaylist(b), false, nil
}

// servePlaylist serves the HLS playlist: the growing EVENT playlist while the recording
// is written, and otherwise the VOD playlist (also when a full disk or a crash kept the
// recording from writing its last version).
func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request, id int64) {
	b, live, err := s.playlist(r.Context(), id)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	cache := cacheLive
	if !live {
		cache = cacheFinal
		s.countView(r, id)
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cache)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, id int64) {
	b, err := record.ReadAll(r.Context(), s.Storage, id, record.ManifestName)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	s.countView(r, id)
	h := w.Header()
	h.Set("Content-Type", "application/dash+xml")
	h.Set("Cache-Control", cacheFinal)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// serveTrack serves a DASH init segment or segment of one track, cut from the stored one.
func (s *Server) serveTrack(w http.ResponseWriter, r *http.Request, id int64, init bool, n, track int) {
	name, ctype := record.SegmentName(n), "video/iso.segment"
	if init {
		name, ctype = record.InitName(n), "video/mp4"
	}
	b, err := record.ReadAll(r.Context(), s.Storage, id, name)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	var out []byte
	if init {
		out, err = record.TrackInit(b, track)
	} else {
		out, err = record.TrackSegment(b, track)
	}
	if err != nil {
		s.mediaFail(w, r, fmt.Errorf("recording %d: %s track %d: %w", id, name, track, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheImmutable)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(out))
}

// handleDVR serves the running recording of a channel: its EVENT playlist, with URIs
// pointing at /vod/{id}/ relative to this path. A player starts at the live edge and can
// seek back to the start of the broadcast.
func (s *Server) handleDVR(w http.ResponseWriter, r *http.Request) {
	if s.Live == nil {
		mediaError(w, http.StatusNotFound)
		return
	}
	id, ok := s.Live.Active(r.PathValue("username"))
	if !ok {
		mediaError(w, http.StatusNotFound)
		return
	}
	b, _, err := s.playlist(r.Context(), id)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	b = record.PrefixPlaylist(b, "../../"+strconv.FormatInt(id, 10)+"/")
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cacheLive)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// serveDownload serves the recording as one MP4, prepared once (header and sample map)
// and read from the stored segments as it is sent.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, id int64) {
	rec, err := s.Recordings.FindRecording(r.Context(), id)
	if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	if rec.Status == onair.RecordingActive || s.writing(id) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "The recording is still running: download it when the broadcast has ended.", http.StatusConflict)
		return
	}
	m, err := s.mp4(r.Context(), rec)
	if errors.Is(err, record.ErrMP4TooLarge) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "The recording is too large for a single MP4 file.", http.StatusRequestEntityTooLarge)
		return
	} else if err != nil {
		s.mediaFail(w, r, err)
		return
	}
	modTime := rec.StartedAt
	if rec.EndedAt != nil {
		modTime = *rec.EndedAt
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.mp4"`, rec.Channel, rec.ID))
	h.Set("Cache-Control", "private, max-age=300")
	h.Set("ETag", fmt.Sprintf(`"mp4-%d-%d"`, rec.ID, m.Size()))
	http.ServeContent(w, r, "", modTime, m.NewReader(r.Context()))
}

// mp4 returns the prepared MP4 of a recording, from the cache or built once.
func (s *Server) mp4(ctx context.Context, rec *onair.Recording) (*record.MP4, error) {
	s.mp4Mu.Lock()
	var e *mp4Entry
	for i, x := range s.mp4s {
		if x.id == rec.ID {
			if x.bytes == rec.Bytes {
				e = x
				s.mp4s = append(append(s.mp4s[:i:i], s.mp4s[i+1:]...), x)
			} else {
				s.mp4s = append(s.mp4s[:i:i], s.mp4s[i+1:]...)
			}
			break
		}
	}
	if e == nil {
		e = &mp4Entry{id: rec.ID, bytes: rec.Bytes}
		s.mp4s = append(s.mp4s, e)
		if len(s.mp4s) > s.MP4Cache {
			s.mp4s = s.mp4s[len(s.mp4s)-s.MP4Cache:]
		}
	}
	s.mp4Mu.Unlock()
	e.once.Do(func() {
		// The build outlives a client that goes away: the next one uses it.
		e.mp4, e.err = record.BuildMP4(context.WithoutCancel(ctx), s.Storage, rec.ID)
	})
	if e.err != nil {
		s.forgetMP4(rec.ID)
	}
	return e.mp4, e.err
}

func (s *Server) forgetMP4(id int64) {
	s.mp4Mu.Lock()
	defer s.mp4Mu.Unlock()
	for i, x := range s.mp4s {
		if x.id == id {
			s.mp4s = append(s.mp4s[:i:i], s.mp4s[i+1:]...)
			return
		}
	}
}
