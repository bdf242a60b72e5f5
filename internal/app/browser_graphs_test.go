package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// cspWatchJS records, in every page of the tab from its first script on, the
// Content-Security-Policy violations that the page reports.
const cspWatchJS = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.effectiveDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber);
});`

// graphsJS reports the graphs that graphs.js drew: each chart's number of points, its
// latest values and how many pixels of its first series' colour its canvas has (so a
// line was really drawn, not just the axes).
const graphsJS = `(() => {
  const g = window.onairGraphs;
  if (!g) return { ready: false, note: (document.getElementById('graphs-note') || {}).textContent || 'no graphs' };
  const out = { ready: true, updates: g.updates, error: g.error, charts: {} };
  for (const [id, u] of Object.entries(g.charts)) {
    const stroke = u.series[1].stroke(u, 1); // uPlot keeps colours as functions
    const rgb = stroke.match(/^#(..)(..)(..)$/).slice(1).map((h) => parseInt(h, 16));
    const c = u.ctx.canvas;
    const px = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let line = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (Math.abs(px[i] - rgb[0]) < 24 && Math.abs(px[i + 1] - rgb[1]) < 24 && Math.abs(px[i + 2] - rgb[2]) < 24 && px[i + 3] > 200) line++;
    }
    out.charts[id] = {
      points: u.data[0].length,
      last: u.data.slice(1).map((col) => col[col.length - 1]),
      canvas: c.width + 'x' + c.height,
      line: line,
      caption: document.querySelector('#graph-' + id + ' .graph-value').textContent
    };
  }
  return out;
})()`

type graphsState struct {
	Ready   bool                  `json:"ready"`
	Note    string                `json:"note"`
	Updates int                   `json:"updates"`
	Error   string                `json:"error"`
	Charts  map[string]chartState `json:"charts"`
}

type chartState struct {
	Points  int       `json:"points"`
	Last    []float64 `json:"last"`
	Canvas  string    `json:"canvas"`
	Line    int       `json:"line"`
	Caption string    `json:"caption"`
}

// waitGraphs waits until the page drew every chart in ids with at least two points each.
func waitGraphs(b *tab, ids []string, timeout time.Duration) graphsState {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var st graphsState
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[graphsState](graphsJS))
		cancel()
		if err == nil {
			st = v
			done := st.Ready && len(st.Charts) == len(ids)
			for _, id := range ids {
				if c, ok := st.Charts[id]; !ok || c.Points < 2 || c.Line == 0 {
					done = false
				}
			}
			if done {
				return st
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: graphs %v not drawn within %s: %+v (err %v) (%s)", b.name, ids, timeout, st, err, b.state())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// elementShot saves a screenshot of the element with the id as artifacts/name.
func (b *tab) elementShot(id, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.ID(id)))
	require.NoError(b.t, err, "%s: screenshot %s", b.name, name)
	require.NoError(b.t, os.WriteFile(filepath.Join(artifactsDir(b.t), name), png, 0o644))
}

// TestBrowserGraphs publishes with ffmpeg and checks, in headless Chromium, that the
// owner's dashboard draws the broadcast's graphs (bitrate in, fps, keyframe interval,
// viewers) and that the admin page draws the server's (CPU, memory, bandwidth, streams,
// viewers), from the 5 s stats history, without a console error or a CSP violation.
func TestBrowserGraphs(t *testing.T) {
	testutil.RequireFFmpeg(t)
	start := time.Now()
	owner := newTab(t, "owner", start.Add(90*time.Second))
	ts := mustStartServer(t, nil)
	t.Cleanup(func() {
		if s := owner.console.String(); s != "" {
			t.Logf("owner console:\n%s", s)
		}
	})
	_, err := chromedp.Call(owner.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatchJS})
	require.NoError(t, err)

	// The first user to sign up is the site admin, and streams too.
	owner.do("sign up",
		chromedp.Navigate(ts.httpURL("/register")),
		chromedp.WaitVisible(chromedp.ID("register-form")),
		chromedp.SendKeys(chromedp.ID("register-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("register-email"), "alice@example.org"),
		chromedp.SendKeys(chromedp.ID("register-password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`#register-form button[type="submit"]`)),
	)
	waitFor[bool](owner, "land on the dashboard",
		`location.pathname === '/dashboard' && document.readyState === 'complete'`, 10*time.Second, 20*time.Millisecond)
	if eval[bool](owner, "look for the graphs", `!document.getElementById('graphs')`) {
		t.Fatal("the dashboard has no graphs: the uPlot asset is not embedded (run make assets)")
	}
	// Offline: a note says when the graphs appear.
	waitFor[bool](owner, "show the offline note",
		`(() => { const n = document.getElementById('graphs-note'); return !n.hidden && /while you are live/.test(n.textContent) &&
			document.getElementById('graphs').hidden; })()`, 10*time.Second, 50*time.Millisecond)
	key := eval[string](owner, "read the stream key",
		`fetch('/api/v1/me/stream-key', {credentials: 'same-origin'}).then((r) => r.json()).then((j) => j.stream_key)`)
	require.NotEmpty(t, key)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")
	live := time.Now()

	// The open dashboard picks the broadcast up by itself; the history has a sample every
	// 5 s, so two points take up to 10 s after going live.
	st := waitGraphs(owner, []string{"bitrate", "fps", "keyframe", "viewers"}, 30*time.Second)
	t.Logf("dashboard graphs drawn %s after going live: %+v", time.Since(live).Round(time.Millisecond), st.Charts)
	require.Empty(t, st.Error)
	require.Greater(t, st.Charts["bitrate"].Last[0], 10_000.0, "bitrate in (bit/s)")
	require.InDelta(t, 30, st.Charts["fps"].Last[0], 3, "fps")
	require.InDelta(t, 1, st.Charts["keyframe"].Last[0], 0.2, "keyframe interval (s), ffmpeg -g 30 at 30 fps")
	require.Contains(t, st.Charts["fps"].Caption, "fps")
	require.True(t, eval[bool](owner, "hide the note while live", `document.getElementById('graphs-note').hidden`))
	owner.do("scroll to the graphs", chromedp.ScrollIntoView(chromedp.ID("graphs-card")))
	owner.elementShot("graphs-card", "graphs-dashboard.png")
	require.Empty(t, eval[[]string](owner, "read the dashboard's CSP violations", `window.__csp`), "CSP violations")

	// The admin page draws the server's graphs.
	owner.do("open the admin page", chromedp.Navigate(ts.httpURL("/admin")))
	st = waitGraphs(owner, []string{"cpu", "memory", "bandwidth", "streams", "viewers"}, 20*time.Second)
	t.Logf("admin graphs: %+v", st.Charts)
	require.Empty(t, st.Error)
	require.Equal(t, 1.0, st.Charts["streams"].Last[0], "live streams")
	require.Greater(t, st.Charts["memory"].Last[0], 1e6, "rss (bytes)")
	require.Greater(t, st.Charts["bandwidth"].Last[0], 10_000.0, "bandwidth in (bit/s)")
	owner.elementShot("graphs-card", "graphs-admin.png")
	owner.screenshot("graphs-admin-page.png")

	// The graphs keep updating every 5 s.
	before := st.Updates
	waitFor[bool](owner, "refresh the admin graphs", fmt.Sprintf(`window.onairGraphs.updates > %d`, before),
		8*time.Second, 250*time.Millisecond)

	require.Empty(t, eval[[]string](owner, "read the admin page's CSP violations", `window.__csp`), "CSP violations")

	// In dark mode the graphs take the dark palette.
	_, err = chromedp.Call(owner.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
	require.NoError(t, err)
	owner.do("reload the admin page in dark mode", chromedp.Navigate(ts.httpURL("/admin")))
	waitGraphs(owner, []string{"cpu", "memory", "bandwidth", "streams", "viewers"}, 10*time.Second)
	owner.elementShot("graphs-card", "graphs-admin-dark.png")
	require.Empty(t, eval[[]string](owner, "read the dark admin page's CSP violations", `window.__csp`), "CSP violations")
	require.Empty(t, owner.console.String(), "console errors and warnings")
}
