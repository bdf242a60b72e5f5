package vod

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/record/recordtest"
)

// oneSegment is the tolerance of duration checks: segments are cut at the first
// keyframe after 2 s, and the media has a keyframe every second.
const oneSegment = 2100 * time.Millisecond

var (
	ptsTimeRE  = regexp.MustCompile(`pts_time:([0-9.]+)`)
	showinfoRE = regexp.MustCompile(`pts_time:(-?[0-9.]+) .* checksum:([0-9A-F]+)`)
)

// frameInfo is a frame as ffmpeg's showinfo filter prints it.
type frameInfo struct {
	pts      float64
	checksum string
}

func showinfo(t testing.TB, out string) []frameInfo {
	t.Helper()
	var frames []frameInfo
	for _, mm := range showinfoRE.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(mm[1], 64)
		require.NoError(t, err)
		frames = append(frames, frameInfo{pts: v, checksum: mm[2]})
	}
	return frames
}

func TestVODPlayback(t *testing.T) {
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "Morning show", false)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 10})
	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	rec := e.waitRecording(t, "alice")
	require.Equal(t, onair.RecordingFinished, rec.Status)

	t.Run("hls", func(t *testing.T) {
		resp, body := e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
		require.Equal(t, cacheFinal, resp.Header.Get("Cache-Control"))
		require.Contains(t, string(body), "#EXT-X-PLAYLIST-TYPE:VOD\n")
		require.True(t, strings.HasSuffix(string(body), "#EXT-X-ENDLIST\n"))

		url := e.url(vodPath(rec.ID, "index.m3u8"))
		probed := ffprobeDuration(t, url)
		require.InDelta(t, m.Length.Seconds(), probed.Seconds(), oneSegment.Seconds(), "published %s, replay %s", m.Length, probed)
		require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), 0.1)
		require.Equal(t, []string{"h264,video", "aac,audio"}, ffprobeStreams(t, url))
		out := ffmpeg(t, "-v", "error", "-xerror", "-i", url, "-f", "null", "-")
		require.Empty(t, strings.TrimSpace(out))

		resp, _ = e.do(t, "GET", vodPath(rec.ID, "seg-0.m4s"), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, cacheImmutable, resp.Header.Get("Cache-Control"))
		require.Equal(t, "video/iso.segment", resp.Header.Get("Content-Type"))
	})

	t.Run("seek", func(t *testing.T) {
		// Frames are told apart by their checksums (testsrc2 changes every frame): after
		// seeking to 4 s, the first frame must be the replay's frame at 4 s.
		hlsURL := e.url(vodPath(rec.ID, "index.m3u8"))
		all := showinfo(t, ffmpeg(t, "-i", hlsURL, "-vf", "showinfo", "-an", "-f", "null", "-"))
		require.NotEmpty(t, all)
		at := map[string]float64{}
		for _, f := range all {
			at[f.checksum] = f.pts - all[0].pts
		}
		requireFrameAt := func(t *testing.T, want float64, out string) {
			t.Helper()
			frames := showinfo(t, out)
			require.NotEmpty(t, frames, "%s", out)
			got, ok := at[frames[0].checksum]
			require.True(t, ok, "a frame of the replay")
			require.InDelta(t, want, got, 0.05)
		}

		// HLS: what a player does to seek to 4 s, with the playlist's durations: it
		// loads the init segment and the segment holding 4 s, which starts with a
		// keyframe and decodes on its own. (ffmpeg 5.1 cannot seek any fMP4 HLS stream,
		// its own included: -ss returns no frame. The browser test seeks with hls.js.)
		_, pl := e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "")
		var start float64
		seg := ""
		for _, l := range strings.Split(string(pl), "\n") {
			if d, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
				v, err := strconv.ParseFloat(strings.TrimSuffix(d, ","), 64)
				require.NoError(t, err)
				if seg == "" && start+v > 4 {
					seg = "next"
				} else if seg == "" {
					start += v
				}
			} else if seg == "next" && strings.HasPrefix(l, "seg-") {
				seg = l
			}
		}
		require.True(t, strings.HasPrefix(seg, "seg-"))
		_, initData := e.do(t, "GET", vodPath(rec.ID, "init-0.mp4"), "", "")
		_, segData := e.do(t, "GET", vodPath(rec.ID, seg), "", "")
		path := filepath.Join(t.TempDir(), "seek.mp4")
		require.NoError(t, os.WriteFile(path, append(initData, segData...), 0o600))
		requireFrameAt(t, start, ffmpeg(t, "-i", path, "-frames:v", "1", "-vf", "showinfo", "-an", "-f", "null", "-"))
		require.InDelta(t, 4, start, 1.05, "the segment holding 4 s")

		// DASH and the MP4 download (over HTTP ranges) seek with ffmpeg -ss.
		for _, name := range []string{"index.mpd", "download.mp4"} {
			requireFrameAt(t, 4, ffmpeg(t, "-ss", "4", "-i", e.url(vodPath(rec.ID, name)),
				"-frames:v", "1", "-vf", "showinfo", "-an", "-f", "null", "-"))
		}
	})

	t.Run("dash", func(t *testing.T) {
		resp, body := e.do(t, "GET", vodPath(rec.ID, "index.mpd"), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/dash+xml", resp.Header.Get("Content-Type"))
		require.Contains(t, string(body), `type="static"`)
		url := e.url(vodPath(rec.ID, "index.mpd"))
		require.ElementsMatch(t, []string{"h264,video", "aac,audio"}, ffprobeStreams(t, url))
		require.InDelta(t, rec.Duration.Seconds(), ffprobeDuration(t, url).Seconds(), 0.1)
		out := ffmpeg(t, "-v", "error", "-xerror", "-i", url, "-f", "null", "-")
		require.Empty(t, strings.TrimSpace(out))

		resp, _ = e.do(t, "GET", vodPath(rec.ID, record.TrackSegmentName(1, 1)), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		resp, _ = e.do(t, "GET", vodPath(rec.ID, record.TrackInitName(0, 0)), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("download", func(t *testing.T) {
		resp, full := e.do(t, "GET", vodPath(rec.ID, "download.mp4"), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "video/mp4", resp.Header.Get("Content-Type"))
		require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
		require.Equal(t, `attachment; filename="alice-`+strconv.FormatInt(rec.ID, 10)+`.mp4"`, resp.Header.Get("Content-Disposition"))
		require.Equal(t, strconv.Itoa(len(full)), resp.Header.Get("Content-Length"))
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag)
		path := filepath.Join(t.TempDir(), "dl.mp4")
		require.NoError(t, os.WriteFile(path, full, 0o600))
		require.Equal(t, []string{"h264,video", "aac,audio"}, ffprobeStreams(t, path))
		require.InDelta(t, m.Length.Seconds(), ffprobeDuration(t, path).Seconds(), oneSegment.Seconds())
		require.InDelta(t, rec.Duration.Seconds(), ffprobeDuration(t, path).Seconds(), 0.15)
		out := ffmpeg(t, "-v", "error", "-xerror", "-i", path, "-f", "null", "-")
		require.Empty(t, strings.TrimSpace(out))

		cases := []struct {
			name, rng string
			from, to  int // expected bytes: full[from:to]
		}{
			{name: "start", rng: "bytes=0-99", from: 0, to: 100},
			{name: "middle", rng: "bytes=100000-150000", from: 100000, to: 150001},
			{name: "suffix", rng: "bytes=-500", from: len(full) - 500, to: len(full)},
			{name: "open end", rng: "bytes=" + strconv.Itoa(len(full)-1000) + "-", from: len(full) - 1000, to: len(full)},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				resp, body := e.do(t, "GET", vodPath(rec.ID, "download.mp4"), "", "", "Range", ca.rng, "If-Range", etag)
				require.Equal(t, http.StatusPartialContent, resp.StatusCode)
				require.Equal(t, full[ca.from:ca.to], body)
				require.Equal(t, "bytes "+strconv.Itoa(ca.from)+"-"+strconv.Itoa(ca.to-1)+"/"+strconv.Itoa(len(full)),
					resp.Header.Get("Content-Range"))
			})
		}
		resp, _ = e.do(t, "GET", vodPath(rec.ID, "download.mp4"), "", "", "Range", "bytes=0-9", "If-Range", `"other"`)
		require.Equal(t, http.StatusOK, resp.StatusCode, "a changed file is sent whole")
		resp, _ = e.do(t, "GET", vodPath(rec.ID, "download.mp4"), "", "", "Range", "bytes="+strconv.Itoa(len(full)+10)+"-")
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
	})

	t.Run("not found", func(t *testing.T) {
		for _, p := range []string{
			vodPath(rec.ID, "seg-999.m4s"), vodPath(rec.ID, "seg-01.m4s"), vodPath(rec.ID, "meta.json"),
			vodPath(rec.ID, "..%2fonair.db"), vodPath(9999, "index.m3u8"), vodPath(9999, "download.mp4"),
			"/vod/0/index.m3u8", "/vod/x/index.m3u8", "/vod/", "/vod/1/a/b", "/vod/live/nobody/index.m3u8",
		} {
			resp, _ := e.do(t, "GET", p, "", "")
			require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		}
	})
}

func TestVODViews(t *testing.T) {
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "", false)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 3})
	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	rec := e.waitRecording(t, "alice")
	now := time.Now()
	var mu sync.Mutex
	e.vod.views.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}

	views := func() int {
		r, err := e.recs.FindRecording(t.Context(), rec.ID)
		require.NoError(t, err)
		return r.Views
	}
	for range 3 { // a player reloading, fetching the manifest too: one view
		e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "", "User-Agent", "player-a")
		e.do(t, "GET", vodPath(rec.ID, "index.mpd"), "", "", "User-Agent", "player-a")
	}
	require.Equal(t, 1, views())
	e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "", "User-Agent", "player-b")
	require.Equal(t, 2, views())
	e.do(t, "GET", vodPath(rec.ID, "seg-0.m4s"), "", "", "User-Agent", "player-c")
	require.Equal(t, 2, views(), "segments do not count")

	mu.Lock()
	now = now.Add(DefaultViewWindow + time.Second)
	mu.Unlock()
	e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "", "User-Agent", "player-a")
	require.Equal(t, 3, views(), "a viewer counts again after the window")

	// The counter stays bounded.
	v := &viewCounter{window: time.Hour, max: 3, now: time.Now, seen: map[viewKey]time.Time{}}
	for i := range 10 {
		require.True(t, v.first(1, strconv.Itoa(i), "ua"))
		require.LessOrEqual(t, len(v.seen), 3)
	}
}

func TestVODLive(t *testing.T) {
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "Live now", false)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 12})
	p, err := e.hub.Publish("alice", m.Tracks)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.Close()
		_ = recordtest.Publish(context.Background(), p, m, 2)
	}()
	defer wg.Wait()

	var id int64
	require.Eventually(t, func() bool {
		var ok bool
		id, ok = e.rec.Active("alice")
		if !ok {
			return false
		}
		resp, body := e.do(t, "GET", "/vod/live/alice/index.m3u8", "", "")
		return resp.StatusCode == http.StatusOK && strings.Count(string(body), "#EXTINF") >= 2
	}, 15*time.Second, 20*time.Millisecond)

	resp, body := e.do(t, "GET", "/vod/live/alice/index.m3u8", "", "")
	require.Equal(t, cacheLive, resp.Header.Get("Cache-Control"))
	text := string(body)
	prefix := "../../" + strconv.FormatInt(id, 10) + "/"
	require.Contains(t, text, "#EXT-X-PLAYLIST-TYPE:EVENT\n")
	require.NotContains(t, text, "#EXT-X-ENDLIST")
	require.Contains(t, text, `#EXT-X-MAP:URI="`+prefix+`init-0.mp4"`)
	require.Contains(t, text, "\n"+prefix+"seg-0.m4s\n")
	resp, _ = e.do(t, "GET", "/vod/live/alice/"+prefix+"seg-0.m4s", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the relative URIs resolve")

	// The same playlist under the recording's own path is the EVENT playlist too.
	resp, body = e.do(t, "GET", vodPath(id, "index.m3u8"), "", "")
	require.Equal(t, cacheLive, resp.Header.Get("Cache-Control"))
	require.Contains(t, string(body), "#EXT-X-PLAYLIST-TYPE:EVENT\n")

	// A viewer starts from the beginning of the broadcast while it is live.
	out := ffmpeg(t, "-live_start_index", "0", "-copyts", "-i", e.url("/vod/live/alice/index.m3u8"),
		"-frames:v", "1", "-vf", "showinfo", "-an", "-f", "null", "-")
	mm := ptsTimeRE.FindStringSubmatch(out)
	require.NotNil(t, mm, "%s", out)
	at, err := strconv.ParseFloat(mm[1], 64)
	require.NoError(t, err)
	require.Less(t, at, 0.5, "starts at the start of the broadcast")

	// The API shows it live; it can be neither downloaded nor deleted yet.
	resp, body = e.do(t, "GET", "/api/v1/recordings/"+strconv.FormatInt(id, 10), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got recordingJSON
	require.NoError(t, json.Unmarshal(body, &got))
	require.True(t, got.Live)
	require.Equal(t, "Live now", got.Title)
	require.Equal(t, vodPath(id, "index.m3u8"), got.Playlist)
	require.Empty(t, got.Download)
	resp, _ = e.do(t, "GET", vodPath(id, "download.mp4"), "", "")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	resp, body = e.do(t, "DELETE", "/api/v1/recordings/"+strconv.FormatInt(id, 10), "alice", "")
	requireAPIError(t, resp, body, http.StatusConflict, onair.ECONFLICT, "The recording is still running: end the broadcast first.")

	wg.Wait()
	rec := e.waitRecording(t, "alice")
	resp, body = e.do(t, "GET", vodPath(rec.ID, "index.m3u8"), "", "")
	require.Equal(t, cacheFinal, resp.Header.Get("Cache-Control"))
	require.True(t, strings.HasSuffix(string(body), "#EXT-X-ENDLIST\n"))
	resp, _ = e.do(t, "GET", "/vod/live/alice/index.m3u8", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no DVR after the broadcast")
}
