package app

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg" // image.Decode of thumbnails
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/testutil"
)

// thumbState is what a stream card shows of its thumbnail and hover preview.
type thumbState struct {
	Loaded  bool    `json:"loaded"`
	Width   int     `json:"width"`
	Playing bool    `json:"playing"`
	Frames  string  `json:"frames"`
	Frame   string  `json:"frame"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
}

const thumbStateJS = `(() => {
  const card = document.querySelector('.stream-card[data-channel="alice"]');
  if (!card) { return null; }
  const img = card.querySelector('img[data-thumb]'), box = card.querySelector('[data-preview]');
  const r = card.querySelector('.thumb').getBoundingClientRect();
  return { loaded: img.classList.contains('is-loaded') && img.naturalWidth > 0, width: img.naturalWidth,
    playing: box.classList.contains('is-playing'), frames: box.dataset.frames || '', frame: box.dataset.frame || '',
    x: r.left + r.width / 2, y: r.top + r.height / 2 };
})()`

// TestBrowserLiveThumbnails: a live stream gets thumbnails that decode and refresh, the
// home and search cards show them in Chromium, and hovering a card plays its preview.
func TestBrowserLiveThumbnails(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	ts := mustStartServer(t, func(c *config.Config) { c.ThumbnailInterval = config.Duration(500 * time.Millisecond) })
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	// The thumbnail exists, decodes (Go and ffprobe) and refreshes.
	thumbURL := ts.httpURL("/thumb/alice.jpg")
	var etag string
	require.Eventually(t, func() bool {
		code, body, h := getBody(t, thumbURL)
		if code != http.StatusOK {
			return false
		}
		img, format, err := image.Decode(bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		require.Equal(t, "jpeg", format)
		require.Equal(t, 320, img.Bounds().Dx())
		require.Equal(t, "image/jpeg", h.Get("Content-Type"))
		require.Contains(t, h.Get("Cache-Control"), "max-age=")
		etag = h.Get("ETag")
		return true
	}, 20*time.Second, 100*time.Millisecond, "no thumbnail")
	ss := ffprobe(t, thumbURL)
	require.Len(t, ss, 1)
	require.Equal(t, "mjpeg", ss[0].CodecName)
	require.Equal(t, 320, ss[0].Width)
	require.Equal(t, 180, ss[0].Height)
	require.Eventually(t, func() bool {
		code, _, h := getBody(t, thumbURL)
		return code == http.StatusOK && h.Get("ETag") != etag
	}, 20*time.Second, 100*time.Millisecond, "the thumbnail never refreshed")
	require.Eventually(t, func() bool {
		code, _, h := getBody(t, ts.httpURL("/thumb/alice/preview.jpg"))
		n, _ := strconv.Atoi(h.Get("X-Preview-Frames"))
		return code == http.StatusOK && n >= 3
	}, 20*time.Second, 100*time.Millisecond, "no preview strip")

	tctx, tcancel := context.WithTimeout(bctx, 60*time.Second)
	defer tcancel()
	for _, page := range []string{"/", "/search?q=alice"} {
		require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(ts.httpURL(page))), page)
		st, err := chromedp.Run(tctx, chromedp.Poll[thumbState](
			`(() => { const s = `+thumbStateJS+`; return s && s.loaded ? s : null; })()`,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "%s: the card shows no thumbnail", page)
		require.Equal(t, 320, st.Width, page)

		// Hover: the preview strip plays its frames.
		require.NoError(t, chromedp.Do(tctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, st.X, st.Y)))
		seen := map[string]bool{}
		_, err = chromedp.Run(tctx, chromedp.Poll[bool](
			`(() => { const s = `+thumbStateJS+`; return !!(s && s.playing && +s.frames >= 2); })()`,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "%s: no preview on hover", page)
		require.Eventually(t, func() bool {
			st, err := chromedp.Run(tctx, chromedp.Evaluate[thumbState](thumbStateJS))
			require.NoError(t, err)
			seen[st.Frame] = true
			return len(seen) >= 2
		}, 10*time.Second, 100*time.Millisecond, "%s: the preview does not move", page)
		shot, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		name := "thumbs-home.png"
		if page != "/" {
			name = "thumbs-search.png"
		}
		require.NoError(t, os.WriteFile(filepath.Join(artifactsDir(t), name), shot, 0o644))

		// Leaving the card stops the preview.
		require.NoError(t, chromedp.Do(tctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1)))
		_, err = chromedp.Run(tctx, chromedp.Poll[bool](
			`(() => { const s = `+thumbStateJS+`; return s && !s.playing; })()`,
			chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "%s: the preview keeps playing", page)
	}
}

// TestThumbnailsWithoutFFmpeg: with no ffmpeg on PATH, onair runs, says so once, serves
// no thumbnail (404) and the home page still lists the live card.
func TestThumbnailsWithoutFFmpeg(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac") // made before ffmpeg leaves PATH
	t.Setenv("PATH", t.TempDir())
	ts := mustStartServer(t, func(c *config.Config) { c.ThumbnailInterval = config.Duration(200 * time.Millisecond) })
	mustCreateUser(t, ts, "alice")
	p, err := ts.Hub().Publish("alice", med.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- testutil.PublishMedia(ctx, p, med, testutil.PublishOpts{Speed: 1, Loops: 3}) }()
	defer func() {
		cancel()
		<-done
		p.Close()
	}()
	waitLive(t, ts, "alice")

	require.Never(t, func() bool {
		code, _, _ := getBody(t, ts.httpURL("/thumb/alice.jpg"))
		return code != http.StatusNotFound
	}, 2*time.Second, 100*time.Millisecond, "a thumbnail without ffmpeg")
	code, body, _ := getBody(t, ts.httpURL("/"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-channel="alice"`)
	require.Contains(t, body, `class="thumb-initial"`) // the placeholder stays under the (absent) picture
	require.Equal(t, 1, strings.Count(ts.log.String(), "live streams get no thumbnails"), ts.log.String())
	require.NotContains(t, ts.log.String(), "thumbnail not made")
}
