package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/onair/onair/internal/onair"
)

// Limits of the API.
const (
	maxListLimit       = 100
	maxBodyBytes int64 = 64 << 10
)

// recordingJSON is a recording as the API shows it.
type recordingJSON struct {
	ID        int64      `json:"id"`
	Channel   string     `json:"channel"`
	Title     string     `json:"title"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Duration is in seconds.
	Duration float64 `json:"duration"`
	Bytes    int64   `json:"bytes"`
	Status   string  `json:"status"`
	// Reason says why a recording failed; only its owner and admins see it.
	Reason  string `json:"reason,omitempty"`
	Views   int    `json:"views"`
	VideoID int64  `json:"video_id"`
	// Live is set while the recording is written: Playlist is then an EVENT playlist
	// that a player can seek back to the start of the broadcast in.
	Live     bool   `json:"live"`
	Playlist string `json:"playlist"`
	Manifest string `json:"manifest,omitempty"`
	Download string `json:"download,omitempty"`
	// Poster is the address of the recording's poster image, or "" without one.
	Poster string `json:"poster"`
}

func (s *Server) recordingJSON(r *http.Request, rec *onair.Recording) recordingJSON {
	base := "/vod/" + strconv.FormatInt(rec.ID, 10) + "/"
	out := recordingJSON{
		ID:        rec.ID,
		Channel:   rec.Channel,
		Title:     rec.Title,
		StartedAt: rec.StartedAt,
		EndedAt:   rec.EndedAt,
		Duration:  rec.Duration.Round(time.Millisecond).Seconds(),
		Bytes:     rec.Bytes,
		Status:    rec.Status,
		Views:     rec.Views,
		VideoID:   rec.VideoID,
		Live:      rec.Status == onair.RecordingActive,
		Playlist:  base + "index.m3u8",
		Poster:    s.PosterPath(r.Context(), rec.ID),
	}
	if !out.Live {
		out.Manifest = base + "index.mpd"
		out.Download = base + "download.mp4"
	}
	if u := s.CurrentUser(r); u != nil && (u.ID == rec.UserID || u.IsAdmin) {
		out.Reason = rec.Reason
	}
	return out
}

// handleAPIList writes a channel's recordings, newest first.
func (s *Server) handleAPIList(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	if onair.ValidateUsername(name) != nil {
		s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", name))
		return
	}
	offset, limit, err := pageParams(r, maxListLimit)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	list, err := s.Recordings.RecordingsByChannel(r.Context(), name, offset, limit)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	out := make([]recordingJSON, len(list))
	for i, rec := range list {
		out[i] = s.recordingJSON(r, rec)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) recordingID(r *http.Request) (int64, error) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return 0, onair.Errorf(onair.ENOTFOUND, "Recording not found.")
	}
	return id, nil
}

func (s *Server) handleAPIGet(w http.ResponseWriter, r *http.Request) {
	id, err := s.recordingID(r)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	rec, err := s.Recordings.FindRecording(r.Context(), id)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.recordingJSON(r, rec))
}

type renameRequest struct {
	Title *string `json:"title"`
}

// handleAPIRename changes a recording's title (its owner).
func (s *Server) handleAPIRename(w http.ResponseWriter, r *http.Request) {
	u := s.CurrentUser(r)
	if u == nil {
		s.writeAPIError(w, r, errSignIn())
		return
	}
	id, err := s.recordingID(r)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	var req renameRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if req.Title == nil {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "title is required."))
		return
	}
	rec, err := s.Recordings.RenameRecording(r.Context(), u, id, *req.Title)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.recordingJSON(r, rec))
}

// handleAPIDelete deletes a recording and its media (its owner or an admin).
func (s *Server) handleAPIDelete(w http.ResponseWriter, r *http.Request) {
	u := s.CurrentUser(r)
	if u == nil {
		s.writeAPIError(w, r, errSignIn())
		return
	}
	id, err := s.recordingID(r)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if s.writing(id) {
		s.writeAPIError(w, r, onair.Errorf(onair.ECONFLICT, "The recording is still running: end the broadcast first."))
		return
	}
	if err := s.Recordings.DeleteRecording(r.Context(), u, id); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	s.forgetMP4(id)
	// The row is gone: the media goes now, or, if that fails, with the retention
	// cleaner's next sweep of media without a row.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
	defer cancel()
	if err := s.Storage.Delete(ctx, id); err != nil {
		s.Logger.Warn("recording media not deleted", "recording_id", id, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAPINotFound(w http.ResponseWriter, r *http.Request) {
	s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "No such API endpoint."))
}

func errSignIn() error { return onair.Errorf(onair.EUNAUTHORIZED, "Sign in first.") }

// errorStatuses maps onair error codes to HTTP statuses, as internal/web does; any other
// code is a 500.
var errorStatuses = map[string]int{
	onair.EINVALID:      http.StatusBadRequest,
	onair.EUNAUTHORIZED: http.StatusUnauthorized,
	onair.EFORBIDDEN:    http.StatusForbidden,
	onair.ENOTFOUND:     http.StatusNotFound,
	onair.ECONFLICT:     http.StatusConflict,
	onair.ETOOMANY:      http.StatusTooManyRequests,
}

type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeAPIError writes err as the API's JSON error; 500s are logged, their text hidden.
func (s *Server) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	code := onair.ErrorCode(err)
	status, ok := errorStatuses[code]
	msg := onair.ErrorMessage(err)
	if !ok {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		status, code, msg = http.StatusInternalServerError, onair.EINTERNAL, "Internal error."
	}
	writeJSON(w, status, apiError{Error: apiErrorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"Internal error."}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// decodeJSON reads a JSON object of at most maxBodyBytes with only the fields v knows.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return onair.Errorf(onair.EINVALID, "Request body must be JSON (Content-Type: application/json).")
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return onair.Errorf(onair.EINVALID, "Request body is too large (the limit is %d KiB).", maxBodyBytes>>10)
	} else if err != nil {
		return onair.Errorf(onair.EINVALID, "Could not read the request body.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return onair.Errorf(onair.EINVALID, "Request body must be a JSON object with a title.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return onair.Errorf(onair.EINVALID, "Request body must be a single JSON object.")
	}
	return nil
}

// pageParams reads ?offset= (default 0) and ?limit= (default and maximum maxLimit).
func pageParams(r *http.Request, maxLimit int) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, maxLimit
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, onair.Errorf(onair.EINVALID, "offset must be a number of at least 0.")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, onair.Errorf(onair.EINVALID, "limit must be a number from 1 to %d.", maxLimit)
		}
	}
	return offset, limit, nil
}
