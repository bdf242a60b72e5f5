package vod

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/store"
)

func TestVODAPI(t *testing.T) {
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "", false)
	e.mustUser(t, "bob", "", false)
	e.mustUser(t, "boss", "", true)
	ctx := t.Context()
	started := time.Date(2025, 6, 1, 20, 0, 0, 0, time.UTC)
	mk := func(channel, title string, at time.Duration) *onair.Recording {
		r := &onair.Recording{Channel: channel, Title: title, StartedAt: started.Add(at)}
		require.NoError(t, e.recs.CreateRecording(ctx, r))
		require.NoError(t, e.local.Put(ctx, r.ID, record.SegmentName(0), strings.NewReader("media")))
		return r
	}
	r1 := mk("alice", "First", 0)
	p := onair.RecordingProgress{Duration: 61234 * time.Millisecond, Bytes: 5000, Segments: 30}
	require.NoError(t, e.recs.FinishRecording(ctx, r1.ID, p, started.Add(time.Minute)))
	r2 := mk("alice", "Second", time.Hour)
	require.NoError(t, e.recs.FailRecording(ctx, r2.ID, p, started.Add(time.Hour+time.Minute), record.ReasonDiskFull))
	r3 := mk("bob", "Bob's", 2*time.Hour)
	require.NoError(t, e.recs.FinishRecording(ctx, r3.ID, p, started.Add(2*time.Hour+time.Minute)))
	id := func(r *onair.Recording) string { return strconv.FormatInt(r.ID, 10) }

	list := func(t *testing.T, path, user string) []recordingJSON {
		t.Helper()
		resp, body := e.do(t, "GET", path, user, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var out []recordingJSON
		require.NoError(t, json.Unmarshal(body, &out))
		return out
	}

	t.Run("list", func(t *testing.T) {
		got := list(t, "/api/v1/channels/alice/recordings", "")
		require.Len(t, got, 2)
		require.Equal(t, []string{"Second", "First"}, []string{got[0].Title, got[1].Title}, "newest first")
		ended := started.Add(time.Minute)
		require.Equal(t, recordingJSON{
			ID: r1.ID, Channel: "alice", Title: "First", StartedAt: started, EndedAt: &ended, Duration: 61.234,
			Bytes: 5000, Status: onair.RecordingFinished, VideoID: r1.VideoID,
			Playlist: "/vod/" + id(r1) + "/index.m3u8", Manifest: "/vod/" + id(r1) + "/index.mpd",
			Download: "/vod/" + id(r1) + "/download.mp4",
		}, got[1])
		require.Equal(t, onair.RecordingFailed, got[0].Status)
		require.Empty(t, got[0].Reason, "only the owner and admins see why")
		require.Equal(t, record.ReasonDiskFull, list(t, "/api/v1/channels/alice/recordings", "alice")[0].Reason)
		require.Equal(t, record.ReasonDiskFull, list(t, "/api/v1/channels/alice/recordings", "boss")[0].Reason)
		require.Empty(t, list(t, "/api/v1/channels/alice/recordings", "bob")[0].Reason)

		got = list(t, "/api/v1/channels/alice/recordings?offset=1&limit=1", "")
		require.Len(t, got, 1)
		require.Equal(t, "First", got[0].Title)
		require.Empty(t, list(t, "/api/v1/channels/boss/recordings", ""))
		require.NotNil(t, list(t, "/api/v1/channels/boss/recordings", ""))

		cases := []struct {
			path, code, msg string
			status          int
		}{
			{"/api/v1/channels/alice/recordings?limit=0", onair.EINVALID, "limit must be a number from 1 to 100.", 400},
			{"/api/v1/channels/alice/recordings?offset=-1", onair.EINVALID, "offset must be a number of at least 0.", 400},
			{"/api/v1/channels/ghost/recordings", onair.ENOTFOUND, `Channel "ghost" not found.`, 404},
			{"/api/v1/channels/No!/recordings", onair.ENOTFOUND, `Channel "No!" not found.`, 404},
			{"/api/v1/recordings/9999", onair.ENOTFOUND, "Recording not found.", 404},
			{"/api/v1/recordings/abc", onair.ENOTFOUND, "Recording not found.", 404},
			{"/api/v1/recordings", onair.ENOTFOUND, "No such API endpoint.", 404},
		}
		for _, ca := range cases {
			resp, body := e.do(t, "GET", ca.path, "", "")
			requireAPIError(t, resp, body, ca.status, ca.code, ca.msg)
		}
	})

	t.Run("get", func(t *testing.T) {
		resp, body := e.do(t, "GET", "/api/v1/recordings/"+id(r3), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var got recordingJSON
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, "Bob's", got.Title)
		require.Equal(t, "bob", got.Channel)
	})

	t.Run("rename", func(t *testing.T) {
		path := "/api/v1/recordings/" + id(r1)
		cases := []struct {
			name, user, body string
			status           int
			code, msg        string
		}{
			{"anonymous", "", `{"title":"x"}`, 401, onair.EUNAUTHORIZED, "Sign in first."},
			{"not the owner", "bob", `{"title":"x"}`, 403, onair.EFORBIDDEN, "Only the channel's owner can rename its recordings."},
			{"admin", "boss", `{"title":"x"}`, 403, onair.EFORBIDDEN, "Only the channel's owner can rename its recordings."},
			{"unknown field", "alice", `{"name":"x"}`, 400, onair.EINVALID, "Request body must be a JSON object with a title."},
			{"no title", "alice", `{}`, 400, onair.EINVALID, "title is required."},
			{"two objects", "alice", `{"title":"a"}{}`, 400, onair.EINVALID, "Request body must be a single JSON object."},
			{"too long", "alice", `{"title":"` + strings.Repeat("x", 141) + `"}`, 400, onair.EINVALID, "Title must be at most 140 characters."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				resp, body := e.do(t, "PATCH", path, ca.user, ca.body)
				requireAPIError(t, resp, body, ca.status, ca.code, ca.msg)
			})
		}
		resp, body := e.do(t, "PATCH", path, "alice", `{"title":"  Better title "}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var got recordingJSON
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, "Better title", got.Title)
		resp, body = e.do(t, "PATCH", "/api/v1/recordings/9999", "alice", `{"title":"x"}`)
		requireAPIError(t, resp, body, 404, onair.ENOTFOUND, "Recording not found.")
		resp, body = e.do(t, "PATCH", path, "alice", `{"title":"x"}`, "Content-Type", "text/plain")
		requireAPIError(t, resp, body, 400, onair.EINVALID, "Request body must be JSON (Content-Type: application/json).")
	})

	t.Run("delete", func(t *testing.T) {
		path := "/api/v1/recordings/" + id(r3)
		resp, body := e.do(t, "DELETE", path, "", "")
		requireAPIError(t, resp, body, 401, onair.EUNAUTHORIZED, "Sign in first.")
		resp, body = e.do(t, "DELETE", path, "alice", "")
		requireAPIError(t, resp, body, 403, onair.EFORBIDDEN, "You cannot delete this recording.")

		resp, _ = e.do(t, "DELETE", path, "boss", "")
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		_, err := e.local.Stat(ctx, r3.ID, record.SegmentName(0))
		require.ErrorIs(t, err, record.ErrNotFound, "the media went with it")
		resp, body = e.do(t, "GET", path, "", "")
		requireAPIError(t, resp, body, 404, onair.ENOTFOUND, "Recording not found.")
		resp, _ = e.do(t, "GET", vodPath(r3.ID, record.SegmentName(0)), "", "")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)

		resp, _ = e.do(t, "DELETE", "/api/v1/recordings/"+id(r2), "alice", "")
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Len(t, list(t, "/api/v1/channels/alice/recordings", ""), 1)
		resp, body = e.do(t, "DELETE", "/api/v1/recordings/"+id(r2), "alice", "")
		requireAPIError(t, resp, body, 404, onair.ENOTFOUND, "Recording not found.")
	})
}

func TestServerStartValidates(t *testing.T) {
	cases := []struct {
		name string
		s    func() *Server
		err  string
	}{
		{"no recordings", func() *Server { return &Server{} }, "vod: recording service is required"},
		{"no storage", func() *Server { return &Server{Recordings: &store.RecordingService{}} }, "vod: storage is required"},
		{"no current user", func() *Server {
			return &Server{Recordings: &store.RecordingService{}, Storage: &record.LocalStorage{}}
		}, "vod: current user func is required"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			require.EqualError(t, ca.s().Start(), ca.err)
		})
	}
	resp := &testResponse{header: http.Header{}}
	(&Server{}).ServeHTTP(resp, &http.Request{})
	require.Equal(t, http.StatusServiceUnavailable, resp.status)
}

type testResponse struct {
	header http.Header
	status int
}

func (r *testResponse) Header() http.Header         { return r.header }
func (r *testResponse) Write(b []byte) (int, error) { return len(b), nil }
func (r *testResponse) WriteHeader(status int)      { r.status = status }
