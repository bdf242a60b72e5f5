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

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// tab is one headless browser (its own process and profile, so its own cookie jar) showing
// one page, named in failure messages.
type tab struct {
	t       *testing.T
	name    string
	ctx     context.Context
	console *consoleLog
}

// newTab starts a browser for the flow; every action in it ends by the deadline.
func newTab(t *testing.T, name string, deadline time.Time) *tab {
	t.Helper()
	bctx := mustBrowser(t)
	ctx, cancel := context.WithDeadline(bctx, deadline)
	t.Cleanup(cancel)
	return &tab{t: t, name: name, ctx: ctx, console: watchConsole(t, bctx)}
}

// do runs actions, failing the test with the step and the page's state on error.
func (b *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %s: %v (%s)", b.name, step, err, b.state())
	}
}

// state describes the page for a failure message.
func (b *tab) state() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' | status: ' +
		Array.from(document.querySelectorAll('.form-error:not([hidden]), #toast:not([hidden]), #chat-status:not([hidden]), #player-status:not([hidden])'))
			.map(e => (e.id || e.className) + '=' + e.textContent.trim()).join('; ') + ' | text: ' +
		(document.body ? document.body.innerText.replace(/\s+/g, ' ').slice(0, 300) : '')`))
	if err != nil {
		return "page state unknown: " + err.Error()
	}
	return s
}

// eval evaluates js in the tab (awaiting a promise) and decodes the result.
func eval[T any](b *tab, step, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %s: %v (%s)", b.name, step, err, b.state())
	}
	return v
}

// waitFor evaluates js every interval until it gives a non-zero value, and returns it. It
// goes on across navigations and errors, so it also waits for a page to load.
func waitFor[T comparable](b *tab, step, js string, timeout, interval time.Duration) T {
	b.t.Helper()
	var zero T
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && v != zero {
			return v
		}
		lastErr = err
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			b.t.Fatalf("%s: %s: not within %s (last value %v, last error %v) (%s)", b.name, step, timeout, v, lastErr, b.state())
		}
		time.Sleep(interval)
	}
}

// screenshot saves the viewport of the tab as artifacts/name.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err, "%s: screenshot %s", b.name, name)
	require.NoError(b.t, os.WriteFile(filepath.Join(artifactsDir(b.t), name), png, 0o644))
}

// consoleLog keeps the errors, warnings and exceptions a page writes to its console.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *consoleLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

// watchConsole collects the tab's console problems until the test ends.
func watchConsole(t *testing.T, bctx context.Context) *consoleLog {
	l := &consoleLog{}
	ctx, cancel := context.WithCancel(bctx)
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				l.mu.Lock()
				l.msgs = append(l.msgs, fmt.Sprintf("%s %s:%d", m, m.URL, m.Line))
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l
}

// chatWatchJS records, in the page, when each chat message is added to and removed from
// the chat log (wall-clock milliseconds), so delivery is timed where it happens.
const chatWatchJS = `(() => {
  if (window.__chat) return true;
  const log = document.getElementById('chat-log');
  if (!log) return false;
  const now = () => performance.timeOrigin + performance.now();
  window.__chat = { added: {}, removed: {} };
  new MutationObserver((muts) => {
    const t = now();
    for (const m of muts) {
      for (const n of m.addedNodes) {
        if (n.nodeType === 1 && n.dataset.id && !window.__chat.added[n.dataset.id]) {
          window.__chat.added[n.dataset.id] = { t: t, text: n.querySelector('.chat-text').textContent };
        }
      }
      for (const n of m.removedNodes) {
        if (n.nodeType === 1 && n.dataset.id && !window.__chat.removed[n.dataset.id]) {
          window.__chat.removed[n.dataset.id] = t;
        }
      }
    }
  }).observe(log, { childList: true });
  return true;
})()`

// chatSeen is when a page showed a chat message.
type chatSeen struct {
	ID string  `json:"id"`
	T  float64 `json:"t"`
}

// seenJS finds the message with the given text among the recorded ones.
func seenJS(text string) string {
	return fmt.Sprintf(`(() => {
  const e = Object.entries(window.__chat ? window.__chat.added : {}).find(([id, v]) => v.text === %q);
  return e ? { id: e[0], t: e[1].t } : { id: '', t: 0 };
})()`, text)
}

// sendChat types text into the chat box and submits it, returning the page's time of the
// click (wall-clock milliseconds).
func sendChat(b *tab, text string) float64 {
	b.t.Helper()
	b.do("type a chat message", chromedp.SendKeys(chromedp.ID("chat-text"), text))
	return eval[float64](b, "send a chat message", `(() => {
  const t = performance.timeOrigin + performance.now();
  document.querySelector('#chat-form button[type="submit"]').click();
  return t;
})()`)
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// TestBrowserPlatformFlow is the browser flow of the platform: sign up and copy the stream
// key, publish with ffmpeg, see the channel live on home, watch it play, and with a second
// user (another browser, so other cookies) follow and chat, the owner seeing the message in
// under a second and deleting it for both.
func TestBrowserPlatformFlow(t *testing.T) {
	testutil.RequireFFmpeg(t)
	start := time.Now()
	deadline := start.Add(75 * time.Second)
	owner := newTab(t, "owner", deadline)
	viewer := newTab(t, "viewer", deadline)
	ts := mustStartServer(t, nil)
	const password = "correct horse battery"

	t.Cleanup(func() {
		for _, b := range []*tab{owner, viewer} {
			if s := b.console.String(); s != "" {
				t.Logf("%s console:\n%s", b.name, s)
			}
		}
	})

	// 1. Sign up through the form; the dashboard shows the key only after Reveal.
	owner.do("open the register page",
		chromedp.Navigate(ts.httpURL("/register")),
		chromedp.WaitVisible(chromedp.ID("register-form")),
		chromedp.SendKeys(chromedp.ID("register-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("register-email"), "alice@example.org"),
		chromedp.SendKeys(chromedp.ID("register-password"), password),
		chromedp.Click(chromedp.CSS(`#register-form button[type="submit"]`)),
	)
	waitFor[bool](owner, "land on the dashboard after signing up",
		`location.pathname === '/dashboard' && document.readyState === 'complete' && !!document.getElementById('key-reveal')`,
		10*time.Second, 20*time.Millisecond)
	masked := eval[string](owner, "read the masked key", `document.getElementById('obs-key').value`)
	require.NotRegexp(t, `[A-Za-z0-9]`, masked, "the key field is not masked before Reveal")
	obsServer := eval[string](owner, "read the OBS server", `document.getElementById('obs-server').value`)
	require.Regexp(t, `^rtmp://[^/]+/live$`, obsServer, "the OBS server field")
	dashboardDOM := eval[string](owner, "read the dashboard DOM", `document.documentElement.outerHTML`)
	dashboardHTML := eval[string](owner, "fetch the dashboard HTML", `fetch('/dashboard', {credentials: 'same-origin'}).then(r => r.text())`)

	owner.do("reveal the key", chromedp.Click(chromedp.ID("key-reveal")))
	key := waitFor[string](owner, "show the key after Reveal",
		`(() => { const k = document.getElementById('obs-key'); return k.dataset.masked === 'false' ? k.value : ''; })()`,
		5*time.Second, 20*time.Millisecond)
	require.Regexp(t, `^[A-Za-z0-9_-]{26,}$`, key)
	require.NotContains(t, dashboardDOM, key, "the dashboard has the key before Reveal")
	require.NotContains(t, dashboardHTML, key, "the server renders the key into the dashboard")

	// Copy: grant the clipboard to the site, click Copy and read the clipboard back.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(owner.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name},
			Setting:    browser.PermissionSettingGranted,
			Origin:     ts.httpURL(""),
		})
		require.NoError(t, err, "grant %s", name)
	}
	owner.do("copy the key", chromedp.Click(chromedp.ID("key-copy")))
	copied := waitFor[string](owner, "find the key on the clipboard",
		`navigator.clipboard.readText().catch(e => 'clipboard: ' + e.message)`, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, key, copied, "Copy put something else on the clipboard")
	owner.do("hide the key again", chromedp.Click(chromedp.ID("key-reveal")))
	waitFor[bool](owner, "mask the key after Hide", `document.getElementById('obs-key').dataset.masked === 'true'`,
		5*time.Second, 20*time.Millisecond)
	t.Logf("signed up and copied the key at %s", time.Since(start).Round(time.Millisecond))

	// 2. ffmpeg publishes with the copied key.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := publish(t, ctx, ts.rtmpURL("/live/"+copied), defaultPublish)
	waitLive(t, ts, "alice")
	t.Logf("live at %s", time.Since(start).Round(time.Millisecond))

	// 3. Home lists the channel as live.
	owner.do("open home", chromedp.Navigate(ts.httpURL("/")))
	waitFor[bool](owner, "see alice live on home",
		`!!document.querySelector('li.stream-card[data-channel="alice"] .badge-live')`, 10*time.Second, 50*time.Millisecond)
	owner.screenshot("platform-home.png")
	homeDOM := eval[string](owner, "read the home DOM", `document.documentElement.outerHTML`)
	require.NotContains(t, homeDOM, key, "the key is on home")

	// 5a. A second user, in another browser, logs in and follows.
	mustCreateUser(t, ts, "bob")
	viewer.do("log in as bob",
		chromedp.Navigate(ts.httpURL("/login?next=/@alice")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("login-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
	)
	waitFor[bool](viewer, "land on alice's channel after logging in",
		`location.pathname === '/@alice' && document.body.dataset.user === 'bob' && !!document.getElementById('follow')`,
		10*time.Second, 20*time.Millisecond)
	require.Equal(t, "0 followers", eval[string](viewer, "read the follower count", `document.getElementById('followers').textContent`))
	owner.do("open the channel page", chromedp.Navigate(ts.httpURL("/@alice")))
	require.Equal(t, "0 followers", eval[string](owner, "read the follower count", `document.getElementById('followers').textContent`))
	viewer.do("follow alice", chromedp.Click(chromedp.ID("follow")))
	waitFor[bool](viewer, "show the follow",
		`(() => { const f = document.getElementById('follow'); return f.dataset.following === 'true' && !f.disabled &&
			document.getElementById('followers').textContent === '1 follower'; })()`,
		5*time.Second, 20*time.Millisecond)
	// The count is stored: a fresh load of either page renders it.
	for _, b := range []*tab{viewer, owner} {
		b.do("reload the channel page", chromedp.Navigate(ts.httpURL("/@alice")))
		require.Equal(t, "1 follower", eval[string](b, "read the follower count after the follow", `document.getElementById('followers').textContent`), b.name)
	}
	require.Equal(t, "true", eval[string](viewer, "read the follow state", `document.getElementById('follow').dataset.following`))

	// 4. The owner's player plays: currentTime advances.
	const videoJS = `(() => { const v = document.querySelector('video'); return v && !v.paused && v.readyState >= 2 ? v.currentTime : 0; })()`
	first := waitFor[float64](owner, "start playing", videoJS, 30*time.Second, 100*time.Millisecond)
	later := waitFor[float64](owner, "keep playing",
		fmt.Sprintf(`(() => { const t = %s; return t >= %f ? t : 0; })()`, videoJS, first+2), 15*time.Second, 100*time.Millisecond)
	require.GreaterOrEqual(t, later, first+2)
	t.Logf("video plays (currentTime %.2f → %.2f) at %s", first, later, time.Since(start).Round(time.Millisecond))

	// The key is in neither the channel page nor home, for the owner signed in.
	for _, path := range []string{"/@alice", "/"} {
		html := eval[string](owner, "fetch "+path, fmt.Sprintf(`fetch(%q, {credentials: 'same-origin'}).then(r => r.text())`, path))
		require.NotContains(t, html, key, "the key is in the HTML of %s", path)
	}
	require.NotContains(t, eval[string](owner, "read the channel DOM", `document.documentElement.outerHTML`), key)

	// Only the owner has the moderation controls.
	require.Equal(t, "true", eval[string](owner, "read the moderator flag", `document.getElementById('chat').dataset.moderator`))
	require.True(t, eval[bool](owner, "find the unban form", `!!document.getElementById('chat-unban')`))
	require.Equal(t, "false", eval[string](viewer, "read the moderator flag", `document.getElementById('chat').dataset.moderator`))
	require.False(t, eval[bool](viewer, "look for the unban form", `!!document.getElementById('chat-unban')`), "bob sees the unban form")

	// 5b. Both chats connect; bob's messages reach alice in under a second.
	for _, b := range []*tab{owner, viewer} {
		waitFor[bool](b, "connect the chat", `document.getElementById('chat-status').hidden && `+chatWatchJS,
			10*time.Second, 20*time.Millisecond)
	}
	messages := []string{
		"hi alice <b>nice</b> stream, see https://example.org/a?b=c",
		"second message from bob",
		"third message from bob",
	}
	var bobIDs []string
	var delivery []time.Duration
	for _, text := range messages {
		sent := sendChat(viewer, text)
		seen := waitFor[chatSeen](owner, "receive bob's message", seenJS(text), 5*time.Second, 20*time.Millisecond)
		d := ms(seen.T - sent)
		require.Less(t, d, time.Second, "alice saw bob's message after %s", d)
		delivery = append(delivery, d)
		mine := waitFor[chatSeen](viewer, "echo bob's own message", seenJS(text), 5*time.Second, 20*time.Millisecond)
		require.Equal(t, seen.ID, mine.ID)
		bobIDs = append(bobIDs, seen.ID)
	}
	t.Logf("chat delivery, bob's click to alice's DOM: %v", delivery)

	// The message is text: its HTML is not parsed, its link is safe.
	link := eval[string](owner, "inspect the rendered message", fmt.Sprintf(`(() => {
  const li = document.querySelector('#chat-log li[data-id="%s"]');
  if (li.querySelector('b')) return 'html parsed';
  const a = li.querySelector('.chat-text a');
  return a ? a.href + ' ' + a.rel + ' ' + a.target : 'no link';
})()`, bobIDs[0]))
	require.Equal(t, "https://example.org/a?b=c nofollow noopener noreferrer _blank", link)

	// The owner speaks too; bob cannot delete that message even with a hand-made frame.
	ownerText := "welcome bob"
	sendChat(owner, ownerText)
	ownerMsg := waitFor[chatSeen](viewer, "receive alice's message", seenJS(ownerText), 5*time.Second, 20*time.Millisecond)
	require.False(t, eval[bool](viewer, "look for moderation controls",
		`!!document.querySelector('#chat .chat-mod, #chat .chat-tools, #chat [data-action="delete"], #chat [data-action="ban"]')`),
		"bob sees moderation controls")
	require.True(t, eval[bool](owner, "find moderation controls", fmt.Sprintf(
		`!!document.querySelector('#chat-log li[data-id="%s"] button.chat-mod')`, bobIDs[0])), "alice has no moderation controls")
	forged := eval[string](viewer, "send a forged delete", fmt.Sprintf(`new Promise((resolve) => {
  const ws = new WebSocket('ws://' + location.host + document.getElementById('chat').dataset.path);
  const done = (v) => { clearTimeout(timer); ws.close(); resolve(v); };
  const timer = setTimeout(() => done('no answer'), 5000);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'delete', id: %s }));
  ws.onmessage = (ev) => { const f = JSON.parse(ev.data); if (f.type === 'error') done('error: ' + f.message); };
  ws.onerror = () => done('socket error');
})`, ownerMsg.ID))
	require.True(t, strings.HasPrefix(forged, "error: "), "bob's forged delete was not refused: %s", forged)
	t.Logf("bob's forged delete: %s", forged)

	viewer.screenshot("platform-channel-viewer.png")
	owner.do("scroll to the chat", chromedp.ScrollIntoView(chromedp.ID("chat")))
	owner.screenshot("platform-channel.png")

	// 6. Alice deletes bob's first message with her controls: gone for both.
	owner.do("open the moderation tools",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#chat-log li[data-id="%s"] button.chat-mod`, bobIDs[0]))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#chat-log li[data-id="%s"] .chat-tools button[data-action="delete"]`, bobIDs[0]))))
	clicked := eval[float64](owner, "click Delete", fmt.Sprintf(`(() => {
  const t = performance.timeOrigin + performance.now();
  document.querySelector('#chat-log li[data-id="%s"] .chat-tools button[data-action="delete"]').click();
  return t;
})()`, bobIDs[0]))
	removedJS := fmt.Sprintf(`(window.__chat.removed['%s'] || 0)`, bobIDs[0])
	for _, b := range []*tab{owner, viewer} {
		gone := waitFor[float64](b, "remove the deleted message", removedJS, 5*time.Second, 20*time.Millisecond)
		t.Logf("delete reached %s in %s", b.name, ms(gone-clicked).Round(100*time.Microsecond))
		require.Less(t, ms(gone-clicked), time.Second, "%s", b.name)
		require.Equal(t, 0, eval[int](b, "count the deleted message",
			fmt.Sprintf(`document.querySelectorAll('#chat-log li[data-id="%s"]').length`, bobIDs[0])), b.name)
		require.Equal(t, len(bobIDs), eval[int](b, "count the other messages",
			fmt.Sprintf(`document.querySelectorAll('#chat-log li[data-id="%s"], #chat-log li[data-id="%s"], #chat-log li[data-id="%s"]').length`,
				bobIDs[1], bobIDs[2], ownerMsg.ID)), "%s lost more than the deleted message", b.name)
	}
	// The deletion is stored: the history has the others only.
	var history []struct {
		ID   int64  `json:"id"`
		Text string `json:"text"`
	}
	require.NoError(t, getJSON(ts.httpURL("/api/v1/channels/alice/chat/history"), &history))
	var texts []string
	for _, m := range history {
		texts = append(texts, m.Text)
	}
	require.Equal(t, []string{messages[1], messages[2], ownerText}, texts)

	// The dashboard, live, with the key masked.
	owner.do("open the dashboard", chromedp.Navigate(ts.httpURL("/dashboard")), chromedp.WaitVisible(chromedp.ID("health")))
	require.Equal(t, "true", eval[string](owner, "read the key mask", `document.getElementById('obs-key').dataset.masked`))
	owner.screenshot("platform-dashboard.png")

	require.False(t, pub.Exited(), pub.Output())
	require.NotContains(t, ts.log.String(), key, "the key is in the log")
	t.Logf("flow done in %s", time.Since(start).Round(time.Millisecond))
}
