package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// replayState is what a replay page's window.onairReplay (static/replay.js) reports.
type replayState struct {
	Mode     string  `json:"mode"`
	Time     float64 `json:"time"`
	Paused   bool    `json:"paused"`
	Duration float64 `json:"duration"`
	Title    string  `json:"title"`
	Pwned    bool    `json:"pwned"`
}

const replayStateJS = `(() => {
  const p = window.onairReplay;
  if (!p) { return null; }
  const v = p.video;
  return { mode: p.mode, time: v.currentTime, paused: v.paused, duration: isFinite(v.duration) ? v.duration : 0,
    title: document.getElementById('replay-title').textContent, pwned: !!window.__pwned };
})()`

// dvrState is the live player's DVR state (static/player.js).
type dvrState struct {
	DVR     bool    `json:"dvr"`
	Mode    string  `json:"mode"`
	Time    float64 `json:"time"`
	Paused  bool    `json:"paused"`
	Src     string  `json:"src"`   // the playlist hls.js plays
	First   float64 `json:"first"` // start of the playlist's first fragment
	Edge    float64 `json:"edge"`  // end of the playlist's last fragment
	LowLat  bool    `json:"lowLat"`
	Latency float64 `json:"latency"`
	Start   bool    `json:"start"` // "From the start" shown
	Live    bool    `json:"live"`  // "Back to live" shown
}

const dvrStateJS = `(() => {
  const p = window.onairPlayer;
  if (!p) { return null; }
  const h = p.hls, d = h && h.latestLevelDetails, f = d && d.fragments;
  const lat = p.latency();
  return { dvr: p.dvr, mode: p.mode, time: p.video.currentTime, paused: p.video.paused,
    src: h ? h.url : '', first: f && f.length ? f[0].start : 0, edge: d ? d.edge : 0,
    lowLat: !!(h && h.lowLatencyMode), latency: isFinite(lat) ? lat : 0,
    start: !document.getElementById('dvr-start').hidden, live: !document.getElementById('dvr-live').hidden };
})()`

// apiClient signs in through the JSON API and sends cookie calls with the CSRF token.
type apiClient struct {
	t    *testing.T
	base string // http://host:port
	http *http.Client
	csrf string
}

func mustLogin(t *testing.T, ts *testServer, name string) *apiClient {
	t.Helper()
	return mustLoginAt(t, ts.httpURL(""), name)
}

// mustLoginAt is mustLogin on the server at base (http://host:port).
func mustLoginAt(t *testing.T, base, name string) *apiClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &apiClient{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	var out struct {
		CSRFToken string `json:"csrf_token"`
	}
	c.call("POST", "/api/v1/login", map[string]string{"username": name, "password": "correct horse battery"}, http.StatusOK, &out)
	require.NotEmpty(t, out.CSRFToken)
	c.csrf = out.CSRFToken
	return c
}

func (c *apiClient) call(method, path string, body any, status int, out any) {
	c.t.Helper()
	data, err := json.Marshal(body)
	require.NoError(c.t, err)
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(data))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	require.Equal(c.t, status, res.StatusCode, "%s %s", method, path)
	if out != nil {
		require.NoError(c.t, json.NewDecoder(res.Body).Decode(out))
	}
}

// TestBrowserReplay records a broadcast, lists it on the channel page, plays and seeks
// the replay in headless Chromium (its title a script that must stay text), then on a
// second, live broadcast uses the live DVR: "From the start" and "Back to live".
func TestBrowserReplay(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := artifactsDir(t)

	// A finished recording of 10 s.
	o := defaultPublish
	o.seconds = 10
	pub := publish(t, ctx, ts.rtmpURL("/live/"+key), o)
	waitLive(t, ts, "alice")
	exited, err := pub.Wait(30 * time.Second)
	require.True(t, exited)
	require.NoError(t, err, pub.Output())
	type rec struct {
		ID      int64   `json:"id"`
		Title   string  `json:"title"`
		Status  string  `json:"status"`
		Dur     float64 `json:"duration"`
		VideoID int64   `json:"video_id"`
	}
	var list []rec
	require.Eventually(t, func() bool {
		list = nil
		return getJSON(ts.httpURL("/api/v1/channels/alice/recordings"), &list) == nil &&
			len(list) == 1 && list[0].Status == "finished"
	}, 30*time.Second, 250*time.Millisecond, "no finished recording")
	first := list[0]

	// The owner gives it a title that is a script.
	const evil = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">`
	alice := mustLogin(t, ts, "alice")
	var renamed rec
	alice.call("PATCH", fmt.Sprintf("/api/v1/recordings/%d", first.ID), map[string]string{"title": evil}, http.StatusOK, &renamed)
	require.Equal(t, evil, renamed.Title)
	alice.call("POST", fmt.Sprintf("/api/v1/videos/%d/comments", first.VideoID), map[string]string{"text": "Nice one!"}, http.StatusCreated, nil)

	// A second broadcast, live for the rest of the test.
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	t.Run("channel lists the replay", func(t *testing.T) {
		tab := mediaTab(t, bctx, 30*time.Second)
		require.NoError(t, chromedp.Do(tab,
			chromedp.Navigate(ts.httpURL("/@alice")),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`a[href="/@alice/replays/%d"]`, first.ID))),
		))
		titles, err := chromedp.Run(tab, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('#replays .replay-title')].map(e => e.textContent)`))
		require.NoError(t, err)
		require.NotEmpty(t, titles)
		require.Equal(t, evil, titles[len(titles)-1], "the oldest replay comes last, its title as text")
		pwned, err := chromedp.Run(tab, chromedp.Evaluate[bool](`!!window.__pwned`))
		require.NoError(t, err)
		require.False(t, pwned)
		shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "replay-channel.png"), shot, 0o644))
	})

	t.Run("replay plays and seeks", func(t *testing.T) {
		tab := mediaTab(t, bctx, 60*time.Second)
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(ts.httpURL(fmt.Sprintf("/@alice/replays/%d", first.ID)))))
		_, err := chromedp.Run(tab, chromedp.Poll[bool](
			`(() => { const p = window.onairReplay; return !!p && p.mode === 'hls.js' && p.video.currentTime > 1; })()`,
			chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
		require.NoError(t, err, "the replay never played")
		st, err := chromedp.Run(tab, chromedp.Evaluate[replayState](replayStateJS))
		require.NoError(t, err)
		require.InDelta(t, first.Dur, st.Duration, 2.5, "%+v", st)
		require.Equal(t, evil, st.Title)
		require.False(t, st.Pwned)

		const target = 6.0
		_, err = chromedp.Run(tab, chromedp.Evaluate[bool](fmt.Sprintf(`(window.onairReplay.seek(%g), true)`, target)))
		require.NoError(t, err)
		_, err = chromedp.Run(tab, chromedp.Poll[bool](
			fmt.Sprintf(`(() => { const v = window.onairReplay.video; return !v.seeking && v.currentTime >= %g && v.currentTime < %g; })()`, target, target+2),
			chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "the seek did not land")
		before, err := chromedp.Run(tab, chromedp.Evaluate[replayState](replayStateJS))
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(tab, chromedp.Sleep(1500*time.Millisecond)))
		after, err := chromedp.Run(tab, chromedp.Evaluate[replayState](replayStateJS))
		require.NoError(t, err)
		require.False(t, after.Paused)
		require.Greater(t, after.Time, before.Time+0.5, "playback did not advance after the seek: %+v", after)
		t.Logf("replay: seek to %g, then %+v", target, after)
		shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "replay-page.png"), shot, 0o644))
	})

	t.Run("live DVR from the start and back", func(t *testing.T) {
		tab := mediaTab(t, bctx, 90*time.Second)
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(ts.httpURL("/@alice"))))
		waitPlayerPlaying(t, tab, "hls.js")
		// Let the broadcast run long enough that its start is far from the live edge.
		require.NoError(t, chromedp.Do(tab, chromedp.Sleep(6*time.Second)))
		live, err := chromedp.Run(tab, chromedp.Evaluate[dvrState](dvrStateJS))
		require.NoError(t, err)
		require.False(t, live.DVR)
		require.True(t, live.Start)
		require.False(t, live.Live)
		require.Greater(t, live.Time, 8.0, "%+v", live)

		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#dvr-start`))))
		_, err = chromedp.Run(tab, chromedp.Poll[bool](
			`(() => { const p = window.onairPlayer, h = p.hls, d = h && h.latestLevelDetails;
			  return p.dvr && !!d && d.fragments.length > 0 && p.video.currentTime > 0 && p.video.currentTime < d.fragments[0].start + 3 && !p.video.paused; })()`,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "From the start did not go to the start: %+v", mustDVRState(t, tab))
		// It plays on from the start (a rebuffer right after the start may delay that on a
		// loaded machine) instead of jumping to the live edge, which is checked below.
		_, err = chromedp.Run(tab, chromedp.Poll[bool](
			`(() => { const p = window.onairPlayer, d = p.hls && p.hls.latestLevelDetails;
			  return !!d && d.fragments.length > 0 && p.video.currentTime > d.fragments[0].start + 1; })()`,
			chromedp.WithPollingTimeout(8*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "DVR playback did not advance: %+v", mustDVRState(t, tab))
		dvr := mustDVRState(t, tab)
		require.True(t, dvr.DVR)
		require.Contains(t, dvr.Src, "/vod/live/alice/index.m3u8")
		require.False(t, dvr.LowLat)
		require.False(t, dvr.Start)
		require.True(t, dvr.Live)
		require.Greater(t, dvr.Time, dvr.First+1, "DVR playback did not advance: %+v", dvr)
		require.Less(t, dvr.Time, dvr.First+6, "DVR playback jumped away from the start: %+v", dvr)
		require.Greater(t, dvr.Edge-dvr.Time, 5.0, "the start is not behind the edge: %+v", dvr)
		t.Logf("dvr: %+v", dvr)

		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#dvr-live`))))
		_, err = chromedp.Run(tab, chromedp.Poll[bool](`!window.onairPlayer.dvr && window.onairPlayer.hls && window.onairPlayer.hls.lowLatencyMode`,
			chromedp.WithPollingTimeout(5*time.Second)))
		require.NoError(t, err)
		st := waitPlayerPlaying(t, tab, "hls.js")
		require.True(t, st.LowLatency)
		require.Positive(t, st.Latency)
		require.Less(t, st.Latency, 6.0)
		back := mustDVRState(t, tab)
		require.Contains(t, back.Src, "/hls/alice/index.m3u8")
		require.True(t, back.Start)
		require.False(t, back.Live)
	})
}

func mustDVRState(t *testing.T, ctx context.Context) dvrState {
	t.Helper()
	st, err := chromedp.Run(ctx, chromedp.Evaluate[dvrState](dvrStateJS))
	require.NoError(t, err)
	return st
}
