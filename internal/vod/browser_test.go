package vod

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/record/recordtest"
	"github.com/onair/onair/internal/testutil"
)

// playerPage plays ?src= with hls.js, as the site's player does, and exposes the video
// and the first fatal error.
const playerPage = `<!doctype html>
<html><body>
<video id="v" muted playsinline></video>
<script src="/test/hls.min.js"></script>
<script>
window.fatal = "";
const v = document.getElementById("v");
const hls = new Hls();
window.hls = hls;
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.fatal = d.type + ": " + d.details; });
window.loaded = [];
hls.on(Hls.Events.FRAG_LOADING, (e, d) => { window.loaded.push(d.frag.relurl + "@" + d.frag.start.toFixed(2)); });
hls.loadSource(new URLSearchParams(location.search).get("src"));
hls.attachMedia(v);
v.play().catch(() => {});
</script>
</body></html>`

// dashPage plays ?src= with dash.js.
const dashPage = `<!doctype html>
<html><body>
<video id="v" muted playsinline></video>
<script src="/test/dash.all.min.js"></script>
<script>
window.fatal = "";
window.loaded = [];
const v = document.getElementById("v");
const player = dashjs.MediaPlayer().create();
player.on("error", (e) => { window.fatal = JSON.stringify(e.error || e); });
player.initialize(v, new URLSearchParams(location.search).get("src"), true);
</script>
</body></html>`

// playerScript returns a player script: the copy the web package embeds (made by the
// Makefile), or the npm one.
func playerScript(t *testing.T, paths ...string) []byte {
	t.Helper()
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	if os.Getenv("ONAIR_REQUIRE_BROWSER") == "1" {
		t.Fatalf("%s not found (run make) and ONAIR_REQUIRE_BROWSER=1", paths[0])
	}
	t.Skipf("%s not found (run make)", paths[0])
	return nil
}

// mustBrowser starts headless Chromium and returns a context for chromedp actions.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := testutil.RequireBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx))
	return ctx
}

// poll waits for a JavaScript expression to be truthy and returns its value; it fails
// the test with the player's fatal error, if any.
func poll[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(30*time.Second),
		chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		fatal, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.fatal`))
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
			`JSON.stringify({t: v.currentTime, d: v.duration, rs: v.readyState, seeking: v.seeking, paused: v.paused,
				buffered: Array.from({length: v.buffered.length}, (_, i) => [v.buffered.start(i), v.buffered.end(i)]),
				seekable: Array.from({length: v.seekable.length}, (_, i) => [v.seekable.start(i), v.seekable.end(i)]),
				loaded: window.loaded})`))
		t.Fatalf("%s: %v (player error %q, video %s)", what, err, fatal, state)
	}
	return v
}

func eval(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	require.NoError(t, err)
}

// TestBrowserPlaysAndSeeks plays a replay in headless Chromium with hls.js and seeks in
// it, then watches a broadcast through the DVR: from the live edge back to the start
// and forward to live again.
func TestBrowserPlaysAndSeeks(t *testing.T) {
	testutil.RequireFFmpeg(t)
	hlsJS := playerScript(t, "../web/static/vendor/hls.min.js", "../../node_modules/hls.js/dist/hls.min.js")
	dashJS := playerScript(t, "../web/static/vendor/dash.all.min.js", "../../node_modules/dashjs/dist/modern/umd/dash.all.min.js")
	bctx := mustBrowser(t)
	e := mustEnv(t, 300*time.Millisecond)
	e.mustUser(t, "alice", "", false)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /test/player.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(playerPage))
	})
	mux.HandleFunc("GET /test/dash.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(dashPage))
	})
	for name, b := range map[string][]byte{"hls.min.js": hlsJS, "dash.all.min.js": dashJS} {
		mux.HandleFunc("GET /test/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(b)
		})
	}
	mux.Handle("/", e.vod)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	t.Run("replay", func(t *testing.T) {
		m := recordtest.MustMedia(t, recordtest.Options{Seconds: 12})
		recordtest.MustPublish(t, e.hub, "alice", m, 6)
		rec := e.waitRecording(t, "alice")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/test/player.html?src="+vodPath(rec.ID, "index.m3u8"))))
		dur := poll[float64](t, ctx, "duration", `v.duration > 0 && isFinite(v.duration) ? v.duration : 0`)
		require.InDelta(t, rec.Duration.Seconds(), dur, 0.3)
		poll[bool](t, ctx, "plays", `v.currentTime > 0.5`)
		eval(t, ctx, `v.currentTime = 7`)
		at := poll[float64](t, ctx, "seeked", `!v.seeking && v.readyState >= 3 && v.currentTime >= 7 ? v.currentTime : 0`)
		require.Less(t, at, 8.0)
		poll[bool](t, ctx, "plays on after the seek", `v.currentTime > 7.5`)
		eval(t, ctx, `v.currentTime = hls.latestLevelDetails.fragments[0].start + 0.1`)
		poll[bool](t, ctx, "seeks back", `!v.seeking && v.readyState >= 3 && v.currentTime >= 1 && v.currentTime < 3`)
	})

	t.Run("dvr", func(t *testing.T) {
		m := recordtest.MustMedia(t, recordtest.Options{Seconds: 30})
		p, err := e.hub.Publish("alice", m.Tracks)
		require.NoError(t, err)
		pctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.Close()
			_ = recordtest.Publish(pctx, p, m, 1)
		}()
		defer wg.Wait()
		defer stop()
		// Let the broadcast run a few segments, then join it.
		require.Eventually(t, func() bool {
			id, ok := e.rec.Active("alice")
			if !ok {
				return false
			}
			_, err := e.local.Stat(context.Background(), id, "seg-5.m4s")
			return err == nil
		}, 20*time.Second, 50*time.Millisecond)

		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/test/player.html?src=/vod/live/alice/index.m3u8")))
		// hls.js starts three target durations (3 s) from the end of the playlist.
		live := poll[float64](t, ctx, "plays at the live edge", `v.readyState >= 3 && v.currentTime > 2.5 ? v.currentTime : 0`)
		start := poll[float64](t, ctx, "seekable", `v.seekable.length > 0 ? v.seekable.start(0) + 0.001 : 0`)
		require.Less(t, start, 0.5, "seekable from the start of the broadcast")

		// From the start: just after the first fragment's start. Its first frame is shown
		// a little after 0 (B-frames delay presentation by two frames), and hls.js does
		// not load a live playlist's first fragment for a seek before that frame.
		first := poll[float64](t, ctx, "first fragment", `hls.latestLevelDetails ? hls.latestLevelDetails.fragments[0].start + 0.001 : 0`)
		require.Less(t, first, 0.5)
		eval(t, ctx, `v.currentTime = hls.latestLevelDetails.fragments[0].start + 0.1`)
		back := poll[float64](t, ctx, "from the start", `!v.seeking && v.readyState >= 3 && v.currentTime < 2 ? v.currentTime + 0.001 : 0`)
		require.Less(t, back, live)
		poll[bool](t, ctx, "plays from the start", `v.currentTime > 0.8 && v.currentTime < 4`)

		// Jump to live.
		eval(t, ctx, `v.currentTime = hls.liveSyncPosition || v.seekable.end(0)`)
		edge := poll[float64](t, ctx, "back to live", `!v.seeking && v.readyState >= 3 && v.currentTime > 2.5 ? v.currentTime : 0`)
		require.Greater(t, edge, live-0.5)
		t.Logf("live edge %.1f s, back to %.1f s, live again at %.1f s (seekable from %s)", live, back, edge,
			strconv.FormatFloat(start, 'f', 3, 64))
	})
}
