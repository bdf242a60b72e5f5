package vod

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/record/recordtest"
)

func TestPoster(t *testing.T) {
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "", false)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 3})
	recordtest.MustPublish(t, e.hub, "alice", m, 5)
	rec := e.waitRecording(t, "alice")
	require.Eventually(t, func() bool {
		_, err := e.local.Stat(t.Context(), rec.ID, record.PosterName)
		return err == nil
	}, 15*time.Second, 20*time.Millisecond)

	resp, body := e.do(t, "GET", vodPath(rec.ID, "poster.jpg"), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	require.Equal(t, cacheImmutable, resp.Header.Get("Cache-Control"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.NotEmpty(t, resp.Header.Get("Last-Modified"))
	require.True(t, len(body) > 2 && body[0] == 0xFF && body[1] == 0xD8, "JPEG magic")

	var got recordingJSON
	resp, body = e.do(t, "GET", "/api/v1/recordings/"+strconv.FormatInt(rec.ID, 10), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, vodPath(rec.ID, "poster.jpg"), got.Poster)

	// Without a poster: 404 and an empty poster in the JSON.
	require.NoError(t, os.Remove(filepath.Join(e.local.Dir, strconv.FormatInt(rec.ID, 10), record.PosterName)))
	tests := []struct {
		name string
		path string
	}{
		{name: "unknown recording", path: vodPath(rec.ID+1000, "poster.jpg")},
		{name: "removed", path: vodPath(rec.ID, "poster.jpg")},
		{name: "bad id", path: "/vod/x/poster.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := e.do(t, "GET", tt.path, "", "")
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		})
	}
	got = recordingJSON{}
	resp, body = e.do(t, "GET", "/api/v1/recordings/"+strconv.FormatInt(rec.ID, 10), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &got))
	require.Empty(t, got.Poster)
}
