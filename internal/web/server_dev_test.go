//go:build devserver

package web

// A dev server with seeded data, real HLS (made by ffmpeg), a stand-in chat over
// WebSocket, and screenshots of the main pages at desktop and phone widths taken with
// headless Chromium. It is not part of the normal test run:
//
//	go test -tags devserver -run TestDevServer ./internal/web
//
// Screenshots go to ONAIR_ARTIFACTS (default /tmp/onair-web-shots). Set
// ONAIR_DEVSERVER_HOLD=10m to keep the server up for manual browsing; its address is logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// devChat is a stand-in for internal/chat: history on join, echo of sent messages,
// delete frames for moderators.
type devChat struct {
	mu    sync.Mutex
	next  int64
	msgs  []map[string]any
	conns map[*websocket.Conn]bool
	wg    sync.WaitGroup
}

func (c *devChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/history") {
		c.mu.Lock()
		defer c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.msgs)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.wg.Add(1)
	defer c.wg.Done()
	user := currentUser(r)
	c.mu.Lock()
	c.conns[conn] = true
	hist := append([]map[string]any(nil), c.msgs...)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		conn.CloseNow()
	}()
	ctx := r.Context()
	_ = wsjson.Write(ctx, conn, map[string]any{"type": "history", "messages": hist})
	for {
		var f map[string]any
		if err := wsjson.Read(ctx, conn, &f); err != nil {
			return
		}
		if user == nil {
			_ = wsjson.Write(ctx, conn, map[string]any{"type": "error", "message": "Log in to chat."})
			continue
		}
		switch f["type"] {
		case "message":
			c.broadcast(ctx, c.add(user.Username, fmt.Sprint(f["text"])))
		case "delete":
			c.broadcast(ctx, map[string]any{"type": "delete", "id": f["id"]})
		}
	}
}

func (c *devChat) add(user, text string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	m := map[string]any{"type": "message", "id": c.next, "user": user, "text": text,
		"time": time.Now().UTC().Format(time.RFC3339)}
	c.msgs = append(c.msgs, m)
	return m
}

func (c *devChat) broadcast(ctx context.Context, f map[string]any) {
	c.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(c.conns))
	for conn := range c.conns {
		conns = append(conns, conn)
	}
	c.mu.Unlock()
	for _, conn := range conns {
		_ = wsjson.Write(ctx, conn, f)
	}
}

// mustDevServer starts the dev server with seeded data.
func mustDevServer(t *testing.T) (*httptest.Server, *env) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not found")
	}
	hlsDir := t.TempDir()
	out, err := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440", "-c:v", "libx264", "-preset", "veryfast", "-g", "30",
		"-c:a", "aac", "-t", "20", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
		filepath.Join(hlsDir, "index.m3u8")).CombinedOutput()
	require.NoError(t, err, string(out))
	files := http.FileServer(http.Dir(hlsDir))
	hls := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /hls/{name}/file → file, for every channel.
		parts := strings.SplitN(r.URL.Path, "/", 4)
		if len(parts) < 4 {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + parts[3]
		files.ServeHTTP(w, r2)
	})
	chat := &devChat{conns: map[*websocket.Conn]bool{}}

	e := mustEnv(t, false, func(s *Server) {
		s.HLS = hls
		s.Chat = chat
		s.static = nil // the real embedded assets, with hls.js when the Makefile copied it
		s.Now = time.Now
	})
	ctx := context.Background()
	boss := e.mustFind("boss")
	users := map[string]*onair.User{}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		users[name] = e.user(name)
	}
	e.channel(users["alice"], "Building a live-streaming server in Go", "Every night: Go, ffmpeg and too much coffee.\nAsk anything in chat.", "go", "coding", "ffmpeg")
	e.channel(users["bob"], "Bob's garden", "Tomatoes, mostly.", "garden", "outdoors")
	e.channel(users["dave"], "Speedrunning retro games", "", "games", "speedrun")
	e.channel(users["erin"], "Lo-fi beats to code to", "", "music", "coding")
	e.channel(users["frank"], "Morning news <live>", "", "news")
	require.NoError(t, e.channels.MarkChannelLive(ctx, "bob", time.Now().Add(-50*time.Hour)))
	for _, f := range [][2]string{{"bob", "alice"}, {"bob", "erin"}, {"carol", "alice"}, {"dave", "alice"}, {"alice", "bob"}} {
		require.NoError(t, e.channels.Follow(ctx, users[f[0]], f[1]))
	}
	v, err := e.comments.ChannelVideo(ctx, "alice")
	require.NoError(t, err)
	for _, c := range [][2]string{{"bob", "Great stream! How do you handle B-frames in the muxer?"},
		{"carol", "The new dashboard looks clean."}, {"alice", "Thanks both! B-frames: composition offsets in the fMP4 trun box."}} {
		_, err := e.comments.CreateComment(ctx, users[c[0]], v.ID, c[1])
		require.NoError(t, err)
	}
	require.NoError(t, e.notes.Notify(ctx, []int64{users["bob"].ID}, onair.Notification{Kind: "live", Channel: "alice",
		Text: "@alice is live: Building a live-streaming server in Go"}))
	require.NoError(t, e.notes.Notify(ctx, []int64{users["bob"].ID}, onair.Notification{Kind: "live", Channel: "erin",
		Text: "@erin is live: Lo-fi beats to code to"}))
	chat.add("bob", "hi everyone 👋")
	chat.add("carol", "the docs are at https://example.com/docs, worth a read")
	chat.add("dave", "<script>alert('xss')</script> nice try")
	chat.add("alice", "welcome! today: the chat fan-out")
	started := time.Now().Add(-42 * time.Minute)
	e.live.streams = []onair.LiveStream{
		{Channel: "alice", StartedAt: started, Publishing: true, VideoCodec: "h264", AudioCodec: "aac", Width: 1280,
			Height: 720, FPS: 30, BitrateKbps: 3128.5, VideoKbps: 3000, AudioKbps: 128.5, KeyframeInterval: 2, Viewers: 128},
		{Channel: "erin", StartedAt: started.Add(-2 * time.Hour), Publishing: true, VideoCodec: "h264", AudioCodec: "aac",
			Width: 1920, Height: 1080, FPS: 60, Viewers: 342},
		{Channel: "dave", StartedAt: started.Add(30 * time.Minute), Publishing: true, VideoCodec: "h265", AudioCodec: "opus",
			Width: 1280, Height: 720, FPS: 60, Viewers: 17},
		{Channel: "frank", StartedAt: started, Publishing: true, VideoCodec: "h264", Width: 854, Height: 480, FPS: 25, Viewers: 3},
	}

	// /dev/login?user=NAME signs the browser in without a password.
	mux := http.NewServeMux()
	mux.HandleFunc("/dev/login", func(w http.ResponseWriter, r *http.Request) {
		u, err := e.users.FindUserByUsername(r.Context(), r.URL.Query().Get("user"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		if _, err := e.srv.Auth.StartSession(w, r, u.ID); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, r.URL.Query().Get("next"), http.StatusSeeOther)
	})
	mux.Handle("/", e.srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		chat.wg.Wait()
	})
	t.Logf("dev server at %s (users: boss, alice, bob, …; sign in with /dev/login?user=NAME&next=/)", ts.URL)
	_ = boss
	return ts, e

}

// mustDevBrowser starts headless Chromium that records CSP violations and script errors
// of every page in window.__problems.
func mustDevBrowser(t *testing.T) context.Context {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(bctx))

	// Collect CSP violations and script errors of every page.
	watch := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__problems = [];
document.addEventListener('securitypolicyviolation', function (e) { window.__problems.push('csp ' + e.violatedDirective + ' ' + e.blockedURI); });
window.addEventListener('error', function (e) { window.__problems.push('error ' + e.message); });`})
		return err
	})
	require.NoError(t, chromedp.Do(bctx, watch))
	return bctx

}

func TestDevServer(t *testing.T) {
	ts, _ := mustDevServer(t)
	dir := os.Getenv("ONAIR_ARTIFACTS")
	if dir == "" {
		dir = "/tmp/onair-web-shots"
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	bctx := mustDevBrowser(t)
	shots := []struct {
		name, user, path string
		wait             time.Duration
		action           chromedp.Action[chromedp.Void]
	}{
		{name: "home", path: "/", wait: 500 * time.Millisecond},
		{name: "home-signed-in", user: "bob", path: "/", wait: 500 * time.Millisecond},
		{name: "channel-live", user: "bob", path: "/@alice", wait: 4 * time.Second},
		{name: "channel-live-owner", user: "alice", path: "/@alice", wait: 3 * time.Second,
			action: chromedp.Click(chromedp.CSS(".chat-msg .chat-mod"))},
		{name: "channel-offline", path: "/@bob", wait: time.Second},
		{name: "dashboard", user: "alice", path: "/dashboard", wait: 500 * time.Millisecond},
		{name: "dashboard-revealed", user: "alice", path: "/dashboard", wait: 500 * time.Millisecond,
			action: chromedp.Click(chromedp.CSS("#key-reveal"))},
		{name: "admin", user: "boss", path: "/admin", wait: 500 * time.Millisecond},
		{name: "login", path: "/login", wait: 300 * time.Millisecond},
		{name: "register", path: "/register", wait: 300 * time.Millisecond},
		{name: "settings", user: "bob", path: "/settings", wait: 300 * time.Millisecond},
		{name: "notifications", user: "bob", path: "/notifications", wait: 500 * time.Millisecond},
		{name: "tag", path: "/tags/coding", wait: 300 * time.Millisecond},
		{name: "search", path: "/search?q=o", wait: 300 * time.Millisecond},
		{name: "embed", path: "/embed/@alice", wait: 3 * time.Second},
	}
	for _, width := range []int64{1280, 390} {
		for _, s := range shots {
			target := ts.URL + s.path
			steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(width, 900, chromedp.EmulateScale(1)),
				chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
					return err
				})}
			if s.user != "" {
				steps = append(steps, chromedp.Navigate(ts.URL+"/dev/login?user="+s.user+"&next="+s.path))
			} else {
				steps = append(steps, chromedp.Navigate(target))
			}
			steps = append(steps, chromedp.Sleep(s.wait))
			if s.action != nil {
				steps = append(steps, s.action, chromedp.Sleep(500*time.Millisecond))
			}
			require.NoError(t, chromedp.Do(bctx, steps...), s.name)
			img, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			require.NoError(t, err)
			name := fmt.Sprintf("%s-%d.png", s.name, width)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), img, 0o644))
			problems, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__problems || []`))
			require.NoError(t, err)
			if len(problems) > 0 {
				t.Errorf("%s: %v", name, problems)
			}
		}
	}

	t.Logf("screenshots in %s", dir)
	if hold, err := time.ParseDuration(os.Getenv("ONAIR_DEVSERVER_HOLD")); err == nil {
		t.Logf("holding %v at %s", hold, ts.URL)
		time.Sleep(hold)
	}
}

// TestDevFlows drives the pages' JavaScript in Chromium: sign-up, the dashboard's key and
// channel form, follow, chat, comments, log out, log in and admin bans.
func TestDevFlows(t *testing.T) {
	ts, e := mustDevServer(t)
	bctx := mustDevBrowser(t)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	nav := func(path string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+path)))
	}
	eval := func(js string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		require.NoError(t, err, js)
	}
	// poll evaluates js until it is truthy (across page loads) and returns its value.
	poll := func(js string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
			if err == nil && v != nil && v != false && v != "" && v != 0.0 {
				return fmt.Sprint(v)
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		require.FailNow(t, "poll timed out", "%s (last error %v)", js, last)
		return ""
	}
	noProblems := func() {
		t.Helper()
		problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__problems || []`))
		require.NoError(t, err)
		require.Empty(t, problems)
	}
	fill := func(values map[string]string) {
		t.Helper()
		for id, v := range values {
			data, _ := json.Marshal(v)
			eval(`document.getElementById('` + id + `').value = ` + string(data))
		}
	}

	// Sign up: lands on the dashboard.
	nav("/register")
	fill(map[string]string{"register-username": "zoe", "register-email": "zoe@example.com", "register-password": "correct horse"})
	eval(`document.getElementById('register-form').requestSubmit()`)
	poll(`location.pathname === '/dashboard'`)
	noProblems()

	// Reveal, then regenerate the key.
	eval(`window.confirm = () => true; document.getElementById('key-reveal').click()`)
	key := poll(`(v => v.startsWith('live_') && v)(document.getElementById('obs-key').value)`)
	zoe := e.mustFind("zoe")
	stored, err := e.keys.StreamKey(context.Background(), zoe.ID)
	require.NoError(t, err)
	require.Equal(t, stored.Reveal(), key)
	eval(`document.getElementById('key-reset').click()`)
	key2 := poll(`(v => v !== '` + key + `' && v.startsWith('live_') && v)(document.getElementById('obs-key').value)`)
	stored, err = e.keys.StreamKey(context.Background(), zoe.ID)
	require.NoError(t, err)
	require.Equal(t, stored.Reveal(), key2)
	eval(`document.getElementById('key-reveal').click()`)
	poll(`document.getElementById('obs-key').dataset.masked === 'true'`)

	// Channel settings: tags are normalised.
	fill(map[string]string{"ch-title": "Zoe <plays>", "ch-tags": "Music, #LoFi music"})
	eval(`document.getElementById('channel-form').requestSubmit()`)
	poll(`document.getElementById('toast').textContent === 'Channel saved.'`)
	require.Equal(t, "music, lofi", poll(`document.getElementById('ch-tags').value`))
	ci, err := e.channels.ChannelInfo(context.Background(), "zoe")
	require.NoError(t, err)
	require.Equal(t, "Zoe <plays>", ci.Title)
	require.Equal(t, []string{"music", "lofi"}, ci.Tags)
	eval(`document.getElementById('ch-recording').click()`)
	poll(`document.getElementById('toast').textContent === 'Recording is off.'`)
	noProblems()

	// Follow alice, chat and comment.
	nav("/@alice")
	poll(`location.pathname === '/@alice' && document.querySelectorAll('#chat-log .chat-msg').length >= 4`)
	require.Equal(t, "false", poll(`String(!!document.querySelector('#chat-log script'))`))
	require.Equal(t, "https://example.com/docs", poll(`document.querySelector('#chat-log .chat-text a[target=_blank]').getAttribute('href').replace(/\/$/, '')`))
	require.Equal(t, "nofollow noopener noreferrer", poll(`document.querySelector('#chat-log .chat-text a[target=_blank]').rel`))
	eval(`document.getElementById('follow').click()`)
	poll(`document.getElementById('follow').dataset.following === 'true'`)
	require.Equal(t, "4 followers", poll(`document.getElementById('followers').textContent`))
	fill(map[string]string{"chat-text": "hello from zoe, see http://example.org/x."})
	eval(`document.getElementById('chat-form').requestSubmit()`)
	poll(`[...document.querySelectorAll('#chat-log .chat-msg.mine')].some(li => li.textContent.includes('hello from zoe'))`)
	require.Equal(t, "http://example.org/x", poll(`document.querySelector('#chat-log .mine .chat-text a').textContent`))

	fill(map[string]string{"comment-text": "<b>bold?</b> no"})
	eval(`document.getElementById('comment-form').requestSubmit()`)
	poll(`document.getElementById('comment-count').textContent === '4'`)
	require.Equal(t, "<b>bold?</b> no", poll(`document.querySelector('#comment-list li:last-child .comment-text').textContent`))
	eval(`document.querySelector('#comment-list li:last-child [data-action=edit]').click()`)
	eval(`document.querySelector('.comment-edit textarea').value = 'edited'; document.querySelector('.comment-edit').requestSubmit()`)
	poll(`document.querySelector('#comment-list li:last-child .comment-text').textContent === 'edited' && !document.querySelector('.comment-edit')`)
	eval(`window.confirm = () => true; document.querySelector('#comment-list li:last-child [data-action=delete]').click()`)
	poll(`document.getElementById('comment-count').textContent === '3'`)
	noProblems()

	// Log out with the header's form, then log in with the form.
	eval(`document.querySelector('.menu form').submit()`)
	poll(`location.pathname === '/' && !document.body.dataset.user`)
	nav("/login?next=/@alice")
	fill(map[string]string{"login-username": "zoe", "login-password": "wrong password"})
	eval(`document.getElementById('login-form').requestSubmit()`)
	require.Equal(t, "Invalid username or password.", poll(`(e => !e.hidden && e.textContent)(document.querySelector('#login-form .form-error'))`))
	fill(map[string]string{"login-password": "correct horse"})
	eval(`document.getElementById('login-form').requestSubmit()`)
	poll(`location.pathname === '/@alice' && document.body.dataset.user === 'zoe'`)
	noProblems()

	// Admin: ban and unban zoe, end a stream.
	nav("/dev/login?user=boss&next=/admin")
	poll(`location.pathname === '/admin' && !!document.querySelector('tr[data-user=zoe] [data-action=ban]')`)
	eval(`window.confirm = () => true; document.querySelector('tr[data-user=zoe] [data-action=ban]').click()`)
	poll(`!!document.querySelector('tr[data-user=zoe] [data-state=banned]')`)
	u, err := e.users.FindUserByUsername(context.Background(), "zoe")
	require.NoError(t, err)
	require.True(t, u.Banned)
	eval(`document.querySelector('tr[data-user=zoe] [data-action=unban]').click()`)
	poll(`!document.querySelector('tr[data-user=zoe] [data-state=banned]')`)
	eval(`document.querySelector('tr[data-user=dave] [data-action=end]').click()`)
	poll(`!document.querySelector('tr[data-user=dave] [data-state=live]')`)
	require.Contains(t, e.endedStreams(), "dave")
	fill(map[string]string{"site-name": "Club TV"})
	eval(`document.getElementById('settings-form').requestSubmit()`)
	poll(`document.querySelector('.brand').textContent.trim() === 'Club TV'`)
	noProblems()

	// The bell: a new "live" notification raises the count and shows a browser
	// notification on the open page (at the next poll, within 15 s).
	nav("/dev/login?user=bob&next=/@erin")
	poll(`location.pathname === '/@erin' && document.body.dataset.user === 'bob'`)
	eval(`window.__notes = []; window.Notification = function (text) { window.__notes.push(text); };
window.Notification.permission = 'granted';`)
	before := poll(`document.getElementById('bell-count').textContent`)
	require.NoError(t, e.notes.Notify(context.Background(), []int64{e.mustFind("bob").ID},
		onair.Notification{Kind: "live", Channel: "dave", Text: "@dave is live"}))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__notes.length`)); err == nil && n > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(t, "@dave is live", poll(`window.__notes[0]`))
	require.NotEqual(t, before, poll(`document.getElementById('bell-count').textContent`))
	nav("/notifications")
	poll(`document.querySelectorAll('.notification').length === 3`)
	poll(`document.getElementById('bell-count').hidden`)
	noProblems()
}
