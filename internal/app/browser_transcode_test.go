package app

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/testutil"
)

// hlsLevels is what hls.js reports about the ladder it plays.
type hlsLevels struct {
	Heights []int `json:"heights"` // hls.levels, in hls.js's order
	Current int   `json:"current"` // hls.currentLevel
	Height  int   `json:"height"`  // its height
}

const hlsLevelsJS = `(() => {
  const h = window.onairPlayer && window.onairPlayer.hls;
  if (!h || !h.levels || h.currentLevel < 0) { return {heights: [], current: -1, height: 0}; }
  return {heights: h.levels.map(l => l.height), current: h.currentLevel, height: h.levels[h.currentLevel].height};
})()`

// throttle limits the tab's download throughput (bytes/s, -1: none) with DevTools
// network conditions.
func throttle(bytesPerSecond float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: bytesPerSecond, UploadThroughput: -1, Latency: 20}},
		})
		return err
	})
}

// TestBrowserSwitchesLevels plays a transcoded channel with hls.js and throttles the
// network below the source's bit rate: hls.js switches down to the 144p rendition.
func TestBrowserSwitchesLevels(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	ts := mustStartServer(t, func(c *config.Config) {
		transcodeConfig(c)
		c.Transcode.Ladder = []config.Rung{{Name: "144p", Height: 144, Kbps: 60}, {Name: "audio", Kbps: 32}}
	})
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := defaultPublish
	// A source well above the throttled rate: 1.2 Mbit/s of video.
	o.extra = []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p",
		"-b:v", "1200k", "-minrate", "1200k", "-maxrate", "1200k", "-bufsize", "600k", "-x264-params", "nal-hrd=cbr",
		"-c:a", "aac", "-b:a", "32k"}
	publish(t, ctx, ts.rtmpURL("/live/"+key), o)
	waitLive(t, ts, "alice")
	waitMultivariant(t, ts, "alice", 3)

	tab := mediaTab(t, bctx, 150*time.Second)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(ts.httpURL("/@alice"))))
	waitPlayerPlaying(t, tab, "hls.js")
	lv, err := chromedp.Run(tab, chromedp.Evaluate[hlsLevels](hlsLevelsJS))
	require.NoError(t, err)
	require.Contains(t, lv.Heights, 180, "the source is a level: %+v", lv)
	require.Contains(t, lv.Heights, 144, "the 144p rendition is a level: %+v", lv)
	// Start from the source: chosen by hand (on a busy machine hls.js's own estimate may
	// stay low), then back to automatic choice, which the throttling must drive down.
	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { const h = window.onairPlayer.hls;
  h.currentLevel = h.levels.findIndex(l => l.height === 180); return true; })()`))
	require.NoError(t, err)
	lv, err = chromedp.Run(tab, chromedp.Poll[hlsLevels](
		`(() => { const l = `+hlsLevelsJS+`; return l.height === 180 ? l : null; })()`,
		chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(500*time.Millisecond)))
	require.NoError(t, err, "hls.js never played the source: %+v", mustPlayerState(t, tab))
	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { window.onairPlayer.hls.loadLevel = -1; return true; })()`))
	require.NoError(t, err)
	t.Logf("levels before throttling: %+v", lv)

	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { const h = window.onairPlayer.hls; window.__ev = [];
  h.on(window.Hls.Events.ERROR, (e, d) => window.__ev.push('error ' + d.details + ' fatal=' + d.fatal));
  h.on(window.Hls.Events.LEVEL_SWITCHING, (e, d) => window.__ev.push('switching ' + d.level));
  h.on(window.Hls.Events.LEVEL_SWITCHED, (e, d) => window.__ev.push('switched ' + d.level));
  return true; })()`))
	require.NoError(t, err)
	defer func() {
		ev, _ := chromedp.Run(tab, chromedp.Evaluate[[]string](`window.__ev || []`))
		t.Logf("hls.js events: %v", ev)
	}()
	// 400 kbit/s: plenty for 144p (60k + 32k audio), a third of the source (1.2 Mbit/s), so
	// that hls.js's estimate falls clearly below the source also on a busy machine.
	require.NoError(t, chromedp.Do(tab, throttle(50_000)))
	lv, err = chromedp.Run(tab, chromedp.Poll[hlsLevels](
		`(() => { const l = `+hlsLevelsJS+`; return l.height === 144 ? l : null; })()`,
		chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(500*time.Millisecond)))
	require.NoError(t, err, "hls.js never switched to 144p: %+v", mustPlayerState(t, tab))
	t.Logf("levels after throttling: %+v", lv)
}
