package app

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// /stat rendered by Chromium through /stat.xsl under its strict CSP: clicking a stream's
// name opens the row of its clients, clicking again closes it (stat.js), and nothing is
// refused.
func TestBrowserStatExpand(t *testing.T) {
	testutil.RequireFFmpeg(t)
	bctx := mustBrowser(t)
	console := watchConsole(t, bctx)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	tctx, tcancel := context.WithTimeout(bctx, 60*time.Second)
	defer tcancel()
	require.NoError(t, chromedp.Do(tctx,
		chromedp.Navigate(ts.httpURL("/stat")), // from loopback: allowed without signing in
		chromedp.WaitVisible(chromedp.CSS(`a[data-clients="live-alice"]`)),
	))
	display := func() string {
		t.Helper()
		v, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById('live-alice').style.display`))
		require.NoError(t, err)
		return v
	}
	require.Equal(t, "none", display(), "the clients are hidden at first")
	require.NoError(t, chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`a[data-clients="live-alice"]`))))
	require.Eventually(t, func() bool { return display() == "" }, 5*time.Second, 50*time.Millisecond, "opened: %s", console)
	// The publisher is listed in the opened row.
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById('live-alice').innerText`))
	require.NoError(t, err)
	require.Contains(t, rows, "publishing")
	require.NoError(t, chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`a[data-clients="live-alice"]`))))
	require.Eventually(t, func() bool { return display() == "none" }, 5*time.Second, 50*time.Millisecond, "closed again")
	href, err := chromedp.Run(tctx, chromedp.Evaluate[string](`location.pathname`))
	require.NoError(t, err)
	require.Equal(t, "/stat", href, "the click does not navigate")
	// No element of the page has an inline handler, and stat.js was not refused. (Chromium
	// reports one refused inline handler on every XSLT page under this CSP: its own XSLT
	// deprecation banner's, whatever the stylesheet.)
	inline, err := chromedp.Run(tctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('*')).filter(
		(e) => Array.from(e.attributes).some((a) => a.name.startsWith('on'))).length`))
	require.NoError(t, err)
	require.Zero(t, inline)
	require.NotContains(t, console.String(), "stat.js")
	require.NotContains(t, console.String(), "Refused to load")
}
