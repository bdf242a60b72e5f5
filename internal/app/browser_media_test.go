package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// playerState is what the watch page's window.onairPlayer (static/player.js) reports.
type playerState struct {
	Mode     string  `json:"mode"`     // engine: hls.js, dash.js, native, unsupported
	Protocol string  `json:"protocol"` // hls, dash, ts
	Time     float64 `json:"time"`     // video.currentTime
	Paused   bool    `json:"paused"`
	Rate     float64 `json:"rate"`     // video.playbackRate
	Latency  float64 `json:"latency"`  // onairPlayer.latency(); 0 when unknown
	Search   string  `json:"search"`   // location.search
	Line     string  `json:"line"`     // the latency line under the video
	Restarts int     `json:"restarts"` // playback started over after an error

	// hls.js
	LowLatency     bool    `json:"lowLatency"`     // hls.lowLatencyMode
	Parts          int     `json:"parts"`          // EXT-X-PARTs in the last playlist
	PartTarget     float64 `json:"partTarget"`     // PART-TARGET
	CanBlockReload bool    `json:"canBlockReload"` // EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD
	PartHoldBack   float64 `json:"partHoldBack"`   // EXT-X-SERVER-CONTROL PART-HOLD-BACK
	TargetDuration float64 `json:"targetDuration"` // EXT-X-TARGETDURATION
	TargetLatency  float64 `json:"targetLatency"`
	BlockingLoads  int     `json:"blockingLoads"` // playlist requests with _HLS_msn
	PartLoads      int     `json:"partLoads"`     // requests for parts (-p{n}.m4s)

	// dash.js
	Dynamic       bool `json:"dynamic"`       // MPD type="dynamic"
	DashLowLat    bool `json:"dashLowLat"`    // dash.js switched to low-latency mode
	DashSegLoads  int  `json:"dashSegLoads"`  // requests for DASH media segments
	DashTimeLoads int  `json:"dashTimeLoads"` // requests for /dash/time (UTCTiming)
}

const playerStateJS = `(() => {
  const p = window.onairPlayer;
  if (!p) { return null; }
  const v = p.video, h = p.hls, d = p.dash;
  const det = h && h.latestLevelDetails;
  const res = performance.getEntriesByType('resource').map(e => e.name);
  const lat = p.latency();
  const line = document.getElementById('player-latency');
  return {
    mode: p.mode, protocol: p.protocol, time: v.currentTime, paused: v.paused, rate: v.playbackRate,
    latency: isFinite(lat) ? lat : 0, search: location.search, line: line ? line.textContent : '', restarts: p.restarts,
    lowLatency: !!(h && h.lowLatencyMode),
    parts: det && det.partList ? det.partList.length : 0,
    partTarget: det ? det.partTarget || 0 : 0,
    canBlockReload: !!(det && det.canBlockReload),
    partHoldBack: det ? det.partHoldBack || 0 : 0,
    targetDuration: det ? det.targetduration || 0 : 0,
    targetLatency: h && h.targetLatency ? h.targetLatency : 0,
    blockingLoads: res.filter(n => n.includes('_HLS_msn=')).length,
    partLoads: res.filter(n => /-p\d+\.m4s/.test(n)).length,
    dynamic: !!(d && d.isDynamic()),
    dashLowLat: !!(d && d.getLowLatencyModeEnabled()),
    dashSegLoads: res.filter(n => n.includes('/dash/') && n.endsWith('.m4s')).length,
    dashTimeLoads: res.filter(n => n.endsWith('/dash/time')).length,
  };
})()`

// mustPlayerState reads window.onairPlayer once.
func mustPlayerState(t *testing.T, ctx context.Context) playerState {
	t.Helper()
	st, err := chromedp.Run(ctx, chromedp.Evaluate[playerState](playerStateJS))
	require.NoError(t, err)
	return st
}

// waitPlayerPlaying polls until the page plays mode past currentTime 1 s, then checks that
// currentTime keeps advancing (1 s more within 6 s: a live player may rebuffer once right
// after its start on a loaded machine, but a stuck one fails), and returns the state after that.
func waitPlayerPlaying(t *testing.T, ctx context.Context, mode string) playerState {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`(() => { const p = window.onairPlayer; return !!p && p.mode === `+jsQuote(mode)+` && p.video.currentTime > 1; })()`,
		chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	require.NoError(t, err, "%s never played: %+v", mode, mustPlayerState(t, ctx))
	before := mustPlayerState(t, ctx)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](
		fmt.Sprintf(`window.onairPlayer.video.currentTime > %g`, before.Time+1),
		chromedp.WithPollingTimeout(6*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	after := mustPlayerState(t, ctx)
	require.NoError(t, err, "currentTime stopped advancing: %+v", after)
	require.Equal(t, mode, after.Mode)
	require.False(t, after.Paused)
	require.Zero(t, after.Restarts, "the player started over after an error")
	t.Logf("%s: %+v", mode, after)
	return after
}

func jsQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// mediaTab opens a tab in the browser of bctx that keeps every resource timing entry
// (the default buffer holds 250, fewer than LL-HLS requests in a minute) and logs the
// page's console to the test log. Closing happens at the test's cleanup.
func mediaTab(t *testing.T, bctx context.Context, timeout time.Duration) context.Context {
	t.Helper()
	tctx, cancelTab := chromedp.NewContext(bctx)
	ctx, cancel := context.WithTimeout(tctx, timeout)
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			t.Logf("console: %s", m)
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelTab()
		wg.Wait()
	})
	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `performance.setResourceTimingBufferSize(100000);`,
		})
		return err
	})))
	return ctx
}

// TestBrowserPlaysLowLatency plays one live channel in headless Chromium through the
// real server: hls.js on the LL-HLS rendition (parts, blocking reload), dash.js on the
// DASH manifest (?player=dash), and the page's toggle between them.
func TestBrowserPlaysLowLatency(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	t.Run("hls.js plays LL-HLS", func(t *testing.T) {
		tab := mediaTab(t, bctx, 60*time.Second)
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(ts.httpURL("/@alice"))))
		st := waitPlayerPlaying(t, tab, "hls.js")
		require.Equal(t, "hls", st.Protocol)
		require.True(t, st.LowLatency, "hls.js not in low-latency mode")
		require.Positive(t, st.Parts, "no EXT-X-PART in the playlist hls.js reads")
		require.Greater(t, st.PartTarget, 0.1)
		require.LessOrEqual(t, st.PartTarget, 0.5)
		require.True(t, st.CanBlockReload)
		require.Positive(t, st.BlockingLoads, "hls.js made no blocking playlist reload")
		require.Positive(t, st.PartLoads, "hls.js loaded no part")
		// hls.js aims at PART-HOLD-BACK (three parts), not three segments back; each stall
		// adds a second, up to one target duration.
		require.InDelta(t, 3*st.PartTarget, st.PartHoldBack, 0.01)
		require.GreaterOrEqual(t, st.TargetLatency, st.PartHoldBack)
		require.LessOrEqual(t, st.TargetLatency, st.PartHoldBack+st.TargetDuration)
		require.Positive(t, st.Latency)
		require.Less(t, st.Latency, 6.0)
		require.Contains(t, st.Line, "LL-HLS")
		require.Contains(t, st.Line, "behind live")
	})

	t.Run("dash.js plays DASH", func(t *testing.T) {
		tab := mediaTab(t, bctx, 60*time.Second)
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(ts.httpURL("/@alice?player=dash"))))
		st := waitPlayerPlaying(t, tab, "dash.js")
		require.Equal(t, "dash", st.Protocol)
		require.True(t, st.Dynamic)
		require.True(t, st.DashLowLat, "dash.js did not switch to low-latency mode")
		require.Positive(t, st.DashSegLoads)
		require.Positive(t, st.DashTimeLoads, "dash.js never read the UTCTiming clock")
		require.Positive(t, st.Latency)
		require.Less(t, st.Latency, 8.0)
		require.Contains(t, st.Line, "DASH")
		shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(artifactsDir(t), "live-channel-dash.png"), shot, 0o644))

		// The toggle switches to hls.js and drops ?player=dash from the address.
		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-player="hls"]`))))
		_, err = chromedp.Run(tab, chromedp.Poll[bool](`window.onairPlayer.mode === 'hls.js'`,
			chromedp.WithPollingTimeout(5*time.Second)))
		require.NoError(t, err)
		st = waitPlayerPlaying(t, tab, "hls.js")
		require.Equal(t, "hls", st.Protocol)
		require.Empty(t, st.Search)
		pressed, err := chromedp.Run(tab, chromedp.Evaluate[string](
			`document.querySelector('button[data-player="hls"]').getAttribute('aria-pressed')`))
		require.NoError(t, err)
		require.Equal(t, "true", pressed)
	})
}
