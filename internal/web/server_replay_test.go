package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// mustRecording creates a recording of channel started at started; a non-zero d ends it
// with that duration.
func (e *env) mustRecording(channel, title string, started time.Time, d time.Duration) *onair.Recording {
	e.t.Helper()
	ctx := context.Background()
	rec := &onair.Recording{Channel: channel, Title: title, StartedAt: started}
	require.NoError(e.t, e.records.CreateRecording(ctx, rec))
	p := onair.RecordingProgress{Duration: d, Bytes: 1 << 20, Segments: 3}
	if d > 0 {
		require.NoError(e.t, e.records.FinishRecording(ctx, rec.ID, p, started.Add(d)))
	} else {
		require.NoError(e.t, e.records.UpdateRecordingProgress(ctx, rec.ID, onair.RecordingProgress{Duration: 95 * time.Second}))
	}
	got, err := e.records.FindRecording(ctx, rec.ID)
	require.NoError(e.t, err)
	return got
}

func TestReplayPages(t *testing.T) {
	t.Parallel()
	e, u := seeded(t)
	ctx := context.Background()
	old := e.mustRecording("alice", "Monday stream", now.Add(-72*time.Hour), 3723*time.Second)
	newer := e.mustRecording("alice", "", now.Add(-3*time.Hour), 245*time.Second)
	running := e.mustRecording("alice", "Alice codes", now.Add(-2*time.Minute), 0)
	bobs := e.mustRecording("bob", "Bob's garden", now.Add(-50*time.Hour), time.Minute)
	require.NoError(t, e.records.AddRecordingView(ctx, old.ID))
	require.NoError(t, e.records.AddRecordingView(ctx, old.ID))
	_, err := e.comments.CreateComment(ctx, u["bob"], old.VideoID, "Great replay!")
	require.NoError(t, err)
	boss := e.mustFind("boss")
	path := func(r *onair.Recording) string { return "/@" + r.Channel + "/replays/" + strconv.FormatInt(r.ID, 10) }

	t.Run("channel lists replays newest first", func(t *testing.T) {
		body := requireStatus(t, e.anon().do("GET", "/@alice", nil), http.StatusOK)
		require.Contains(t, body, `id="replays"`)
		iRunning := indexOf(t, body, `href="`+path(running)+`"`)
		iNewer := indexOf(t, body, `href="`+path(newer)+`"`)
		iOld := indexOf(t, body, `href="`+path(old)+`"`)
		require.Less(t, iRunning, iNewer)
		require.Less(t, iNewer, iOld)
		for _, s := range []string{"Monday stream", "1:02:03", "4:05", "2 views", "0 views", "3 days ago",
			"Broadcast of 14 Mar 2026", "Recording", `class="poster"`, `data-dvr-src="/vod/live/alice/index.m3u8"`,
			`id="dvr-start"`, "From the start", "Back to live"} {
			require.Contains(t, body, s)
		}
		require.NotContains(t, body, path(bobs))
	})

	t.Run("channel without replays", func(t *testing.T) {
		body := requireStatus(t, e.anon().do("GET", "/@carol", nil), http.StatusOK)
		require.NotContains(t, body, `id="replays"`)
	})

	t.Run("replay page", func(t *testing.T) {
		body := requireStatus(t, e.anon().do("GET", path(old), nil), http.StatusOK)
		for _, s := range []string{"<title>Monday stream · onair</title>", `<h1 id="replay-title">Monday stream</h1>`,
			`data-src="/vod/` + strconv.FormatInt(old.ID, 10) + `/index.m3u8"`, `data-recording="false"`,
			`href="/vod/` + strconv.FormatInt(old.ID, 10) + `/download.mp4"`, "Download MP4", "1:02:03", "2 views",
			"11 Mar 2026 12:00 UTC", `data-video="` + strconv.FormatInt(old.VideoID, 10) + `"`, "Great replay!",
			`<script src="/static/vendor/hls.min.js?v=`, `<script src="/static/replay.js?v=`,
			`<script src="/static/comments.js?v=`, "http://example.com:8080/vod/", "index.mpd", "Log in</a> to comment"} {
			require.Contains(t, body, s)
		}
		for _, s := range []string{`id="rename-open"`, `id="replay-delete"`, `id="rename-form"`, "still recording", `<script>`} {
			require.NotContains(t, body, s)
		}
	})

	t.Run("owner renames and deletes", func(t *testing.T) {
		body := requireStatus(t, e.as(u["alice"]).do("GET", path(old), nil), http.StatusOK)
		for _, s := range []string{`id="rename-open"`, `id="replay-delete"`, `id="rename-form"`, `id="comment-form"`} {
			require.Contains(t, body, s)
		}
	})

	t.Run("admin deletes but does not rename", func(t *testing.T) {
		body := requireStatus(t, e.as(boss).do("GET", path(old), nil), http.StatusOK)
		require.Contains(t, body, `id="replay-delete"`)
		require.NotContains(t, body, `id="rename-open"`)
		body = requireStatus(t, e.as(u["bob"]).do("GET", path(old), nil), http.StatusOK)
		require.NotContains(t, body, `id="replay-delete"`)
		require.NotContains(t, body, `id="rename-open"`)
	})

	t.Run("recording in progress", func(t *testing.T) {
		body := requireStatus(t, e.anon().do("GET", path(running), nil), http.StatusOK)
		for _, s := range []string{`data-recording="true"`, `id="recording-badge"`, "still recording", "1:35 so far",
			`data-src="/vod/` + strconv.FormatInt(running.ID, 10) + `/index.m3u8"`} {
			require.Contains(t, body, s)
		}
		require.NotContains(t, body, "download.mp4")
		require.NotContains(t, body, "index.mpd")
	})

	t.Run("addresses", func(t *testing.T) {
		id := strconv.FormatInt(old.ID, 10)
		cases := []struct {
			path     string
			status   int
			location string
		}{
			{"/@ALICE/replays/" + id, http.StatusMovedPermanently, path(old)},
			{"/@bob/replays/" + id, http.StatusMovedPermanently, path(old)},
			{"/@alice/replays/0" + id, http.StatusMovedPermanently, path(old)},
			{"/@alice/replays/999999", http.StatusNotFound, ""},
			{"/@alice/replays/0", http.StatusNotFound, ""},
			{"/@alice/replays/-1", http.StatusNotFound, ""},
			{"/@alice/replays/abc", http.StatusNotFound, ""},
			{"/alice/replays/" + id, http.StatusNotFound, ""},
		}
		for _, c := range cases {
			rec := e.anon().do("GET", c.path, nil)
			require.Equal(t, c.status, rec.Code, c.path)
			require.Equal(t, c.location, rec.Header().Get("Location"), c.path)
			if c.status == http.StatusNotFound {
				require.Contains(t, rec.Body.String(), "Not found", c.path)
				require.Equal(t, ctypeHTML, rec.Header().Get("Content-Type"))
			}
		}
		body := e.anon().do("GET", "/@alice/replays/999999", nil).Body.String()
		require.Contains(t, body, "There is no such replay")
	})

	t.Run("deleted replay is gone", func(t *testing.T) {
		require.NoError(t, e.records.DeleteRecording(ctx, u["bob"], bobs.ID))
		requireStatus(t, e.anon().do("GET", path(bobs), nil), http.StatusNotFound)
		body := requireStatus(t, e.anon().do("GET", "/@bob", nil), http.StatusOK)
		require.NotContains(t, body, `id="replays"`)
	})
}

func TestReplaysDisabled(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false, func(s *Server) { s.Recordings = nil })
	e.user("alice")
	rec := &onair.Recording{Channel: "alice", Title: "x", StartedAt: now}
	require.NoError(t, e.records.CreateRecording(context.Background(), rec))
	e.live.streams = []onair.LiveStream{aliceStream()}
	body := requireStatus(t, e.anon().do("GET", "/@alice", nil), http.StatusOK)
	require.NotContains(t, body, `id="replays"`)
	require.NotContains(t, body, "data-dvr-src")
	require.NotContains(t, body, "From the start")
	requireStatus(t, e.anon().do("GET", "/@alice/replays/"+strconv.FormatInt(rec.ID, 10), nil), http.StatusNotFound)
}

func TestReplayEscaping(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	mallory := e.user("mallory")
	rec := e.mustRecording("mallory", "x", now.Add(-time.Hour), time.Minute)
	_, err := e.records.RenameRecording(context.Background(), mallory, rec.ID, evil)
	require.NoError(t, err)
	p := "/@mallory/replays/" + strconv.FormatInt(rec.ID, 10)
	for _, c := range []*client{e.anon(), e.as(mallory)} {
		for _, path := range []string{"/@mallory", p} {
			body := requireStatus(t, c.do("GET", path, nil), http.StatusOK)
			requireEscaped(t, body)
			require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
		}
	}
	body := e.as(mallory).do("GET", p, nil).Body.String()
	require.Contains(t, body, `<h1 id="replay-title">&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;&#39;</h1>`)
	require.Contains(t, body, `value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;&#39;"`)
}

func TestClock(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0:00", 400 * time.Millisecond: "0:00", 600 * time.Millisecond: "0:01", 59 * time.Second: "0:59",
		245 * time.Second: "4:05", time.Hour: "1:00:00", 3723 * time.Second: "1:02:03", -time.Second: "0:00",
	} {
		require.Equal(t, want, clock(d), d)
	}
}

func indexOf(t *testing.T, body, s string) int {
	t.Helper()
	i := strings.Index(body, s)
	require.GreaterOrEqual(t, i, 0, "%s not in the page", s)
	return i
}
