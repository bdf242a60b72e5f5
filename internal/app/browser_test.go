package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// mustBrowser starts headless Chromium and returns a context for chromedp actions.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := testutil.RequireBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx)) // starts the browser
	return ctx
}

// artifactsDir is an uncommitted folder for screenshots (ONAIR_ARTIFACTS, or artifacts/ at the repo root).
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("ONAIR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func TestBrowserPlaysChannel(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	tctx, tcancel := context.WithTimeout(bctx, 60*time.Second)
	defer tcancel()
	require.NoError(t, chromedp.Do(tctx,
		chromedp.Navigate(ts.httpURL("/")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/@alice"]`)),
	))
	home, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tctx,
		chromedp.Navigate(ts.httpURL("/@alice")),
		chromedp.WaitReady(chromedp.CSS("video")),
	))
	played, err := chromedp.Run(tctx, chromedp.Poll[float64](
		`(() => { const v = document.querySelector('video'); return v && v.currentTime > 3 ? v.currentTime : 0; })()`,
		chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(250*time.Millisecond)))
	require.NoError(t, err)
	require.Greater(t, played, 3.0)
	page, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)

	dir := artifactsDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "live-home.png"), home, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "live-channel.png"), page, 0o644))
}
