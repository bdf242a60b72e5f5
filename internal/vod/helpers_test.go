package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// testUserHeader names the user of a test request; the test's CurrentUser reads it, as
// the auth middleware's user would be read in the app.
const testUserHeader = "X-Test-User"

// testEnv is a hub, its CMAF streams, a SQLite store, a recorder to local storage, and
// the VOD server behind a real HTTP server.
type testEnv struct {
	hub   *hub.Registry
	cmaf  *cmafstream.Manager
	db    *store.DB
	recs  *store.RecordingService
	local *record.LocalStorage
	rec   *record.Recorder
	vod   *Server
	srv   *httptest.Server
	users map[string]*onair.User
}

func mustEnv(t testing.TB, grace time.Duration) *testEnv {
	t.Helper()
	e := &testEnv{users: map[string]*onair.User{}}
	e.db = &store.DB{DSN: "sqlite:" + filepath.Join(t.TempDir(), "onair.db"), Secret: bytes.Repeat([]byte{1}, store.SecretSize)}
	require.NoError(t, e.db.Open(context.Background()))
	e.recs = store.NewRecordingService(e.db)
	e.local = &record.LocalStorage{Dir: filepath.Join(t.TempDir(), "recordings")}
	e.hub = &hub.Registry{Logger: discard, GracePeriod: grace}
	require.NoError(t, e.hub.Start())
	e.cmaf = &cmafstream.Manager{Hub: e.hub, Logger: discard}
	require.NoError(t, e.cmaf.Start())
	e.rec = &record.Recorder{
		CMAF:       e.cmaf,
		Channels:   store.NewChannelService(e.db),
		Recordings: e.recs,
		Storage:    e.local,
		Logger:     discard,
	}
	require.NoError(t, e.rec.Start())
	e.hub.OnStart = e.rec.StreamStarted
	e.vod = &Server{
		Recordings: e.recs,
		Storage:    e.local,
		Live:       e.rec,
		Logger:     discard,
		CurrentUser: func(r *http.Request) *onair.User {
			return e.users[r.Header.Get(testUserHeader)]
		},
	}
	require.NoError(t, e.vod.Start())
	e.srv = httptest.NewServer(e.vod)
	t.Cleanup(func() {
		e.srv.Close()
		e.hub.Close()
		e.rec.Close()
		e.cmaf.Close()
		require.NoError(t, e.db.Close())
	})
	return e
}

// mustUser adds a user and its channel directly in SQL (no password hash to pay for).
func (e *testEnv) mustUser(t testing.TB, name, title string, admin bool) *onair.User {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	db := e.db.SQL()
	_, err := db.ExecContext(ctx, `INSERT INTO users (username, password_hash, is_admin, created_at) VALUES (?, 'x', ?, ?)`, name, admin, now)
	require.NoError(t, err)
	u := &onair.User{Username: name, IsAdmin: admin}
	require.NoError(t, db.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ?`, name).Scan(&u.ID))
	_, err = db.ExecContext(ctx, `INSERT INTO channels (user_id, name, title, created_at) VALUES (?, ?, ?, ?)`, u.ID, name, title, now)
	require.NoError(t, err)
	e.users[name] = u
	return u
}

// waitRecording waits until the channel's newest recording is in a final state.
func (e *testEnv) waitRecording(t testing.TB, channel string) *onair.Recording {
	t.Helper()
	var rec *onair.Recording
	require.Eventually(t, func() bool {
		list, err := e.recs.RecordingsByChannel(context.Background(), channel, 0, 1)
		require.NoError(t, err)
		if len(list) == 0 || list[0].Status == onair.RecordingActive {
			return false
		}
		rec = list[0]
		return true
	}, 20*time.Second, 20*time.Millisecond)
	return rec
}

func (e *testEnv) url(path string) string { return e.srv.URL + path }

func vodPath(id int64, name string) string { return "/vod/" + strconv.FormatInt(id, 10) + "/" + name }

// do sends a request as user ("" for anonymous) and returns the response with its body.
func (e *testEnv) do(t testing.TB, method, path, user, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.url(path), rd)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set(testUserHeader, user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// requireAPIError checks a JSON error response.
func requireAPIError(t testing.TB, resp *http.Response, body []byte, status int, code, msg string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "%s", body)
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Equal(t, apiErrorBody{Code: code, Message: msg}, e.Error)
}

func ffprobeDuration(t testing.TB, input string) time.Duration {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", input).CombinedOutput()
	require.NoError(t, err, "ffprobe: %s", out)
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, "ffprobe output %q", out)
	return time.Duration(v * float64(time.Second))
}

func ffprobeStreams(t testing.TB, input string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name",
		"-of", "json", input).Output()
	require.NoError(t, err, "ffprobe: %s", out)
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &probe))
	var streams []string
	for _, s := range probe.Streams {
		streams = append(streams, s.CodecName+","+s.CodecType)
	}
	return streams
}

// ffmpeg runs ffmpeg with args and returns its output; it fails the test on an error.
func ffmpeg(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin"}, args...)...).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	return string(out)
}
