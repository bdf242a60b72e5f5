package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// now is the fixed clock of the tests.
var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func nowFunc() time.Time { return now }

// fakeLive is a hand-written onair.LiveDirectory over a slice.
type fakeLive struct {
	mu      sync.Mutex
	streams []onair.LiveStream
}

var _ onair.LiveDirectory = (*fakeLive)(nil)

func (f *fakeLive) LiveStreams() []onair.LiveStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams
}

func (f *fakeLive) LiveStream(name string) (onair.LiveStream, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if s.Channel == name {
			return s, true
		}
	}
	return onair.LiveStream{}, false
}

// end removes a stream, as the app's EndStream does through the hub.
func (f *fakeLive) end(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.streams {
		if s.Channel == name {
			f.streams = append(f.streams[:i:i], f.streams[i+1:]...)
			return true
		}
	}
	return false
}

func aliceStream() onair.LiveStream {
	return onair.LiveStream{
		Channel: "alice", StartedAt: now.Add(-17 * time.Minute), Publishing: true,
		VideoCodec: "h264", AudioCodec: "aac", Width: 1280, Height: 720, FPS: 30,
		BitrateKbps: 3128.5, VideoKbps: 3000, AudioKbps: 128.5, KeyframeInterval: 2,
		SampleRate: 48000, Channels: 2, Viewers: 3,
	}
}

// staticFS copies the embedded static files, with or without a stand-in player asset, so
// tests do not depend on whether the Makefile has copied hls.min.js.
func staticFS(t testing.TB, withPlayer bool) fstest.MapFS {
	t.Helper()
	sub, err := fs.Sub(embeddedStatic, "static")
	require.NoError(t, err)
	m := fstest.MapFS{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		m[p] = &fstest.MapFile{Data: data}
		return err
	})
	require.NoError(t, err)
	delete(m, playerAssetPath)
	if withPlayer {
		m[playerAssetPath] = &fstest.MapFile{Data: []byte("/* hls.js stand-in */ var Hls = function () {};\n")}
	}
	return m
}

// hlsStub stands for the HLS handler that internal/app passes in.
var hlsStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	_, _ = io.WriteString(w, "#EXTM3U\n# "+r.URL.Path+"\n")
})

// chatStub stands for the chat handler: it echoes who asked.
var chatStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	who := "anonymous"
	if u := auth.UserFromContext(r.Context()); u != nil {
		who = u.Username
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`","user":"`+who+`"}`)
})

// syncBuffer is a bytes.Buffer for logs written from handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a web.Server on a real SQLite store and the real authenticator.
type env struct {
	t        testing.TB
	db       *store.DB
	users    *store.UserService
	channels *store.ChannelService
	keys     *store.StreamKeyService
	sessions *store.SessionService
	comments *store.CommentService
	notes    *store.NotificationService
	settings *store.SettingsService
	records  *store.RecordingService
	live     *fakeLive
	srv      *Server
	logs     *syncBuffer

	mu    sync.Mutex
	ended []string // channels passed to EndStream
}

// mustEnv opens a fresh store, creates the admin "boss" (unless noRoot), and starts a
// Server on it with the options applied before Start.
func mustEnv(t testing.TB, noRoot bool, opts ...func(*Server)) *env {
	t.Helper()
	db := &store.DB{DSN: filepath.Join(t.TempDir(), "w.db"), Secret: make([]byte, 32), Now: nowFunc}
	require.NoError(t, db.Open(context.Background()))
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	e := &env{
		t:        t,
		db:       db,
		users:    store.NewUserService(db),
		channels: store.NewChannelService(db),
		keys:     store.NewStreamKeyService(db),
		sessions: store.NewSessionService(db),
		comments: store.NewCommentService(db),
		notes:    store.NewNotificationService(db),
		settings: store.NewSettingsService(db),
		records:  store.NewRecordingService(db),
		live:     &fakeLive{},
		logs:     &syncBuffer{},
	}
	if !noRoot {
		e.user("boss")
	}
	e.srv = &Server{
		Logger:        slog.New(slog.NewTextHandler(e.logs, nil)),
		Live:          e.live,
		Users:         e.users,
		Accounts:      e.users,
		Sessions:      e.sessions,
		Keys:          e.keys,
		Platform:      e.channels,
		Comments:      e.comments,
		Notifications: e.notes,
		Settings:      e.settings,
		Recordings:    e.records,
		Auth:          &auth.Authenticator{Sessions: e.sessions, Accounts: e.users, Now: nowFunc},
		Chat:          chatStub,
		HLS:           hlsStub,
		DASH:          hlsStub,
		EndStream: func(ch string) bool {
			e.mu.Lock()
			e.ended = append(e.ended, ch)
			e.mu.Unlock()
			return e.live.end(ch)
		},
		Version: "v1.2.3",
		Now:     nowFunc,
		static:  staticFS(t, true),
	}
	for _, o := range opts {
		o(e.srv)
	}
	require.NoError(t, e.srv.Start())
	return e
}

func (e *env) endedStreams() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ended...)
}

// password is the password tests give a user.
func password(name string) string { return "password-of-" + name }

// user creates a user (and channel) with password(name).
func (e *env) user(name string) *onair.User {
	e.t.Helper()
	u := &onair.User{Username: name, Email: name + "@example.com"}
	_, err := e.users.CreateUser(context.Background(), u, password(name))
	require.NoError(e.t, err)
	return u
}

// channel sets a channel's settings as its owner.
func (e *env) channel(u *onair.User, title, description string, tags ...string) {
	e.t.Helper()
	_, err := e.channels.UpdateChannel(context.Background(), u, onair.ChannelUpdate{
		Title: &title, Description: &description, Tags: &tags,
	})
	require.NoError(e.t, err)
}

// client is a browser or API client of the env's server.
type client struct {
	e       *env
	cookies map[string]*http.Cookie
	csrf    string
	bearer  string
	ip      string
	header  http.Header
}

// anon returns a client without credentials.
func (e *env) anon() *client {
	return &client{e: e, cookies: map[string]*http.Cookie{}, ip: "192.0.2.10", header: http.Header{}}
}

// as returns a client signed in as u with a fresh session (no password hashing).
func (e *env) as(u *onair.User) *client {
	e.t.Helper()
	sess, err := e.sessions.CreateSession(context.Background(), u.ID)
	require.NoError(e.t, err)
	c := e.anon()
	c.cookies[auth.DefaultCookieName] = &http.Cookie{Name: auth.DefaultCookieName, Value: sess.Token.Reveal()}
	c.csrf = sess.CSRFToken
	return c
}

// bearerFor returns an API client with a personal token of u.
func (e *env) bearerFor(u *onair.User) *client {
	e.t.Helper()
	tok, err := e.sessions.CreateAPIToken(context.Background(), u.ID, "test")
	require.NoError(e.t, err)
	c := e.anon()
	c.bearer = tok.Reveal()
	return c
}

// do sends a request. body is sent as is when it is a string, else as JSON; a cookie
// client sends its CSRF token on state-changing requests.
func (c *client) do(method, target string, body any) *httptest.ResponseRecorder {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(c.e.t, err)
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = "example.com:8080"
	req.RemoteAddr = c.ip + ":40000"
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	if c.csrf != "" && method != "GET" && method != "HEAD" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	c.e.srv.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	return rec
}

// requireStatus checks the status and returns the body.
func requireStatus(t testing.TB, rec *httptest.ResponseRecorder, status int) string {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	return rec.Body.String()
}

// requireAPIError checks a JSON error answer.
func requireAPIError(t testing.TB, rec *httptest.ResponseRecorder, status int, code, message string) {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	// The authenticator's errors add a charset.
	require.Contains(t, []string{ctypeJSON, ctypeJSON + "; charset=utf-8"}, rec.Header().Get("Content-Type"))
	var body apiError
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, code, body.Error.Code, rec.Body.String())
	if message != "" {
		require.Equal(t, message, body.Error.Message)
	}
}

func decodeBody[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

const (
	ctypeHTML = "text/html; charset=utf-8"
	ctypeJSON = "application/json"
)

// seeded is the env of the page tests: alice (live, titled, tagged), bob (last live
// 50 hours ago) and carol (never live, no title).
func seeded(t testing.TB, opts ...func(*Server)) (*env, map[string]*onair.User) {
	t.Helper()
	e := mustEnv(t, false, opts...)
	u := map[string]*onair.User{}
	for _, name := range []string{"alice", "bob", "carol"} {
		u[name] = e.user(name)
	}
	e.channel(u["alice"], "Alice codes", "Late-night Go.", "go", "coding")
	e.channel(u["bob"], "Bob's garden", "", "garden")
	require.NoError(t, e.channels.MarkChannelLive(context.Background(), "bob", now.Add(-50*time.Hour)))
	e.live.streams = []onair.LiveStream{aliceStream()}
	return e, u
}

func TestServerRoutes(t *testing.T) {
	t.Parallel()
	e, _ := seeded(t)
	empty := mustEnv(t, false)
	cases := []struct {
		name     string
		env      *env
		method   string
		path     string
		status   int
		ctype    string
		location string
		contains []string
		excludes []string
	}{
		{
			name: "home live", method: "GET", path: "/", status: 200, ctype: ctypeHTML,
			contains: []string{`href="/@alice"`, "Alice codes", "@alice", "H264", "1280×720", "30 fps", "AAC",
				"17 minutes ago", `datetime="2026-03-14T11:43:00Z"`, "3 watching", "How to go live", "v1.2.3",
				"Popular tags", `href="/tags/go"`, `href="/register"`},
			excludes: []string{"Nobody is live", "Following"},
		},
		{
			name: "home empty", env: empty, method: "GET", path: "/", status: 200, ctype: ctypeHTML,
			contains: []string{"Nobody is live right now", "<details class=\"card golive\" open>", "rtmp://example.com/live",
				"Stream Key", "ffmpeg -re", "rtmp://example.com/live/YOUR_STREAM_KEY"},
			excludes: []string{"Popular tags"},
		},
		{name: "home head", method: "HEAD", path: "/", status: 200, ctype: ctypeHTML},
		{
			name: "channel live", method: "GET", path: "/@alice", status: 200, ctype: ctypeHTML,
			contains: []string{"<title>Alice codes · onair</title>", `<video id="video"`, `data-src="/hls/alice/index.m3u8"`,
				`data-api="/api/v1/streams/alice"`, `data-live="true"`, "http://example.com:8080/hls/alice/index.m3u8",
				"rtmp://example.com/live/alice", `<script src="/static/vendor/hls.min.js?v=`,
				`<script src="/static/player.js?v=`, `<script src="/static/channel.js?v=`, `<script src="/static/chat.js?v=`,
				`<script src="/static/comments.js?v=`, "Late-night Go.", `aria-label="Live video of @alice"`,
				"0 followers", "3 watching", `href="/tags/coding"`, `data-path="/api/v1/channels/alice/chat"`,
				"Log in to follow", "&lt;iframe src=&#34;http://example.com:8080/embed/@alice&#34;", "Live chat"},
			excludes: []string{"player asset missing", `id="chat-form"`, `id="comment-form"`},
		},
		{
			name: "channel offline", method: "GET", path: "/@bob", status: 200, ctype: ctypeHTML,
			contains: []string{"Bob&#39;s garden", `data-live="false"`, "offline", "last live",
				`datetime="2026-03-12T10:00:00Z"`, "2 days ago", "http://example.com:8080/hls/bob/index.m3u8",
				"rtmp://example.com/live/bob"},
		},
		{
			name: "channel never live", method: "GET", path: "/@carol", status: 200, ctype: ctypeHTML,
			contains: []string{"<title>carol · onair</title>", "offline", "not live yet"},
		},
		{
			name: "channel unknown", method: "GET", path: "/@nobody", status: 404, ctype: ctypeHTML,
			contains: []string{"Not found", "There is no channel @nobody."},
		},
		{
			name: "channel invalid name", method: "GET", path: "/@a", status: 404, ctype: ctypeHTML,
			contains: []string{"There is no channel @a."},
		},
		{name: "channel upper case", method: "GET", path: "/@Alice", status: 301, location: "/@alice"},
		{name: "channel trailing slash", method: "GET", path: "/@alice/", status: 301, location: "/@alice"},
		{
			name: "embed live", method: "GET", path: "/embed/@alice", status: 200, ctype: ctypeHTML,
			contains: []string{`<video id="video"`, `data-live="true"`, `href="http://example.com:8080/@alice"`},
			excludes: []string{"site-header", "app.js"},
		},
		{
			name: "embed offline", method: "GET", path: "/embed/@bob", status: 200, ctype: ctypeHTML,
			contains: []string{"@bob is not live right now."},
		},
		{name: "embed upper case", method: "GET", path: "/embed/@Bob", status: 301, location: "/embed/@bob"},
		{name: "embed unknown", method: "GET", path: "/embed/@nobody", status: 404, ctype: ctypeHTML},
		{
			name: "tag", method: "GET", path: "/tags/go", status: 200, ctype: ctypeHTML,
			contains: []string{"<h1 id=\"list-heading\">#go</h1>", `href="/@alice"`},
			excludes: []string{`href="/@bob"`},
		},
		{name: "tag upper case", method: "GET", path: "/tags/Go", status: 301, location: "/tags/go"},
		{
			name: "tag empty", method: "GET", path: "/tags/nothing", status: 200, ctype: ctypeHTML,
			contains: []string{"No channel carries this tag yet."},
		},
		{
			name: "search", method: "GET", path: "/search?q=garden", status: 200, ctype: ctypeHTML,
			contains: []string{`href="/@bob"`, `value="garden"`, "<title>Search: garden · onair</title>"},
			excludes: []string{`href="/@alice"`},
		},
		{
			name: "search none", method: "GET", path: "/search?q=zzz", status: 200, ctype: ctypeHTML,
			contains: []string{"No channel matches “zzz”."},
		},
		{name: "search form", method: "GET", path: "/search", status: 200, ctype: ctypeHTML},
		{name: "login page", method: "GET", path: "/login?next=/@alice", status: 200, ctype: ctypeHTML,
			contains: []string{`data-next="/@alice"`, `id="login-form"`, `<script src="/static/account.js?v=`}},
		{name: "login page bad next", method: "GET", path: "/login?next=//evil.example", status: 200, ctype: ctypeHTML,
			contains: []string{`data-next="/"`}},
		{name: "register page", method: "GET", path: "/register", status: 200, ctype: ctypeHTML,
			contains: []string{`id="register-form"`, "At least 8 characters."}},
		{name: "dashboard anonymous", method: "GET", path: "/dashboard", status: 303, location: "/login?next=%2Fdashboard"},
		{name: "settings anonymous", method: "GET", path: "/settings", status: 303, location: "/login?next=%2Fsettings"},
		{name: "notifications anonymous", method: "GET", path: "/notifications", status: 303,
			location: "/login?next=%2Fnotifications"},
		{name: "admin anonymous", method: "GET", path: "/admin", status: 303, location: "/login?next=%2Fadmin"},
		{
			name: "unknown path", method: "GET", path: "/nope", status: 404, ctype: ctypeHTML,
			contains: []string{"There is nothing at this address."},
		},
		{name: "unknown deep path", method: "GET", path: "/a/b/c", status: 404, ctype: ctypeHTML},
		{name: "post home", method: "POST", path: "/", status: 404, ctype: ctypeHTML},
		{
			name: "healthz", method: "GET", path: "/healthz", status: 200, ctype: "text/plain; charset=utf-8",
			contains: []string{"ok"},
		},
		{
			name: "api streams", method: "GET", path: "/api/v1/streams", status: 200, ctype: ctypeJSON,
			contains: []string{`"channel":"alice"`},
		},
		{
			name: "api stream", method: "GET", path: "/api/v1/streams/alice", status: 200, ctype: ctypeJSON,
			contains: []string{`"channel":"alice"`},
		},
		{
			name: "api stream offline", method: "GET", path: "/api/v1/streams/bob", status: 404, ctype: ctypeJSON,
			contains: []string{`{"error":{"code":"not_found","message":"Stream \"bob\" is not live."}}`},
		},
		{
			name: "api unknown", method: "GET", path: "/api/v1/nope", status: 404, ctype: ctypeJSON,
			contains: []string{`"code":"not_found"`},
		},
		{
			name: "api wrong method", method: "DELETE", path: "/api/v1/streams", status: 404, ctype: ctypeJSON,
		},
		{
			name: "chat mounted", method: "GET", path: "/api/v1/channels/alice/chat", status: 200, ctype: ctypeJSON,
			contains: []string{`{"path":"/api/v1/channels/alice/chat","user":"anonymous"}`},
		},
		{
			name: "chat history mounted", method: "GET", path: "/api/v1/channels/alice/chat/history", status: 200,
			contains: []string{`"path":"/api/v1/channels/alice/chat/history"`},
		},
		{
			name: "hls", method: "GET", path: "/hls/alice/index.m3u8", status: 200, ctype: "application/vnd.apple.mpegurl",
			contains: []string{"#EXTM3U", "# /hls/alice/index.m3u8"},
		},
		{
			name: "dash", method: "GET", path: "/dash/alice/index.mpd", status: 200,
			contains: []string{"# /dash/alice/index.mpd"},
		},
		{
			name: "static", method: "GET", path: "/static/style.css", status: 200, ctype: "text/css; charset=utf-8",
		},
		{
			name: "static missing", method: "GET", path: "/static/nope.js", status: 404, ctype: ctypeHTML,
		},
		{
			name: "static placeholder not served", method: "GET", path: "/static/vendor/README.md", status: 404,
		},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			ce := e
			if ca.env != nil {
				ce = ca.env
			}
			rec := ce.anon().do(ca.method, ca.path, nil)
			require.Equal(t, ca.status, rec.Code, rec.Body.String())
			if ca.ctype != "" {
				require.Equal(t, ca.ctype, rec.Header().Get("Content-Type"))
			}
			if ca.location != "" {
				require.Equal(t, ca.location, rec.Header().Get("Location"))
			}
			body := rec.Body.String()
			for _, c := range ca.contains {
				require.Contains(t, body, c)
			}
			for _, c := range ca.excludes {
				require.NotContains(t, body, c)
			}
		})
	}
}

func TestServerPagesSignedIn(t *testing.T) {
	t.Parallel()
	e, u := seeded(t)
	ctx := context.Background()
	require.NoError(t, e.channels.Follow(ctx, u["bob"], "alice"))
	require.NoError(t, e.notes.Notify(ctx, []int64{u["bob"].ID}, onair.Notification{
		Kind: "live", Channel: "alice", Text: "@alice is live: Alice codes"}))
	bob := e.as(u["bob"])

	t.Run("layout", func(t *testing.T) {
		body := requireStatus(t, bob.do("GET", "/", nil), 200)
		require.Contains(t, body, `<meta name="csrf-token" content="`+bob.csrf+`">`)
		require.Contains(t, body, `<body data-user="bob">`)
		require.Contains(t, body, `aria-label="Notifications, 1 unread"`)
		require.Contains(t, body, `<input type="hidden" name="csrf_token" value="`+bob.csrf+`">`)
		require.Contains(t, body, `href="/dashboard"`)
		require.NotContains(t, body, `href="/admin"`)
		require.Contains(t, body, `id="following-heading"`)
		require.Contains(t, body, "Your stream key is on your")
		// The followed live channel shows in "Following" as well as in "Live now".
		require.Equal(t, 2, strings.Count(body, `<a class="card-link" href="/@alice">`))
	})

	t.Run("anonymous has no token", func(t *testing.T) {
		body := requireStatus(t, e.anon().do("GET", "/", nil), 200)
		require.NotContains(t, body, "csrf-token")
		require.NotContains(t, body, "data-user")
	})

	t.Run("channel follow button", func(t *testing.T) {
		body := requireStatus(t, bob.do("GET", "/@alice", nil), 200)
		require.Contains(t, body, `data-following="true" aria-pressed="true">Following</button>`)
		require.Contains(t, body, "1 follower")
		require.Contains(t, body, `id="chat-form"`)
		require.Contains(t, body, `id="comment-form"`)
		require.Contains(t, body, `data-moderator="false"`)
		require.NotContains(t, body, `id="chat-unban"`)
	})

	t.Run("own channel", func(t *testing.T) {
		alice := e.as(u["alice"])
		body := requireStatus(t, alice.do("GET", "/@alice", nil), 200)
		require.NotContains(t, body, `id="follow"`)
		require.Contains(t, body, `data-moderator="true"`)
		require.Contains(t, body, `id="chat-unban"`)
	})

	t.Run("admin moderates", func(t *testing.T) {
		root, err := e.users.FindUserByUsername(ctx, "boss")
		require.NoError(t, err)
		body := requireStatus(t, e.as(root).do("GET", "/@alice", nil), 200)
		require.Contains(t, body, `data-moderator="true"`)
		require.Contains(t, body, `href="/admin"`)
	})

	t.Run("dashboard", func(t *testing.T) {
		alice := e.as(u["alice"])
		body := requireStatus(t, alice.do("GET", "/dashboard", nil), 200)
		require.Contains(t, body, `<input id="obs-server" class="mono" readonly value="rtmp://example.com/live">`)
		require.Contains(t, body, `value="••••••••••••••••••••"`)
		require.Contains(t, body, `value="Alice codes"`)
		require.Contains(t, body, `value="go, coding"`)
		require.Contains(t, body, `data-api="/api/v1/streams/alice" data-live="true"`)
		require.Contains(t, body, `<dd id="h-resolution">1280×720</dd>`)
		require.Contains(t, body, `<dd id="h-keyframe">2 s</dd>`)
		require.Contains(t, body, `<dd id="h-bitrate">3128.5 kbit/s</dd>`)
		key, err := e.keys.StreamKey(ctx, u["alice"].ID)
		require.NoError(t, err)
		require.NotContains(t, body, key.Reveal(), "the stream key is never rendered")
	})

	t.Run("settings", func(t *testing.T) {
		body := requireStatus(t, bob.do("GET", "/settings", nil), 200)
		require.Contains(t, body, `id="password-form"`)
		require.Contains(t, body, `id="delete-form"`)
	})

	t.Run("notifications", func(t *testing.T) {
		body := requireStatus(t, bob.do("GET", "/notifications", nil), 200)
		require.Contains(t, body, `<li class="notification unread">`)
		require.Contains(t, body, "@alice is live: Alice codes")
	})

	t.Run("login page redirects", func(t *testing.T) {
		rec := bob.do("GET", "/login?next=/@alice", nil)
		require.Equal(t, http.StatusSeeOther, rec.Code)
		require.Equal(t, "/@alice", rec.Header().Get("Location"))
	})

	t.Run("admin page", func(t *testing.T) {
		requireStatus(t, bob.do("GET", "/admin", nil), http.StatusForbidden)
		root, err := e.users.FindUserByUsername(ctx, "boss")
		require.NoError(t, err)
		body := requireStatus(t, e.as(root).do("GET", "/admin", nil), 200)
		require.Contains(t, body, `<tr data-user="alice">`)
		require.Contains(t, body, `data-action="end"`)
		require.Contains(t, body, `data-action="ban"`)
		require.Contains(t, body, `value="onair"`)
		// No ban button for oneself.
		row := body[strings.Index(body, `<tr data-user="boss">`):]
		row = row[:strings.Index(row, "</tr>")]
		require.NotContains(t, row, `data-action="ban"`)
	})

	t.Run("logout form", func(t *testing.T) {
		c := e.as(u["carol"])
		// Without the token field, the form is refused.
		req := httptest.NewRequest("POST", "/logout", strings.NewReader("x=1"))
		req.Host = "example.com:8080"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(c.cookies[auth.DefaultCookieName])
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		require.Equal(t, http.StatusForbidden, rec.Code)
		req = httptest.NewRequest("POST", "/logout", strings.NewReader("csrf_token="+c.csrf))
		req.Host = "example.com:8080"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(c.cookies[auth.DefaultCookieName])
		rec = httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Contains(t, rec.Header().Get("Set-Cookie"), "Max-Age=0")
		require.Equal(t, "/", rec.Header().Get("Location"))
		c.csrf = ""
		requireStatus(t, c.do("GET", "/api/v1/me", nil), http.StatusUnauthorized)
	})
}

func TestServerPagesWellFormed(t *testing.T) {
	t.Parallel()
	e, u := seeded(t)
	root, err := e.users.FindUserByUsername(context.Background(), "boss")
	require.NoError(t, err)
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	ownScript := regexp.MustCompile(`^<script src="/static/[a-z0-9/._-]+\?v=[0-9a-f]{12}" defer>$`)
	paths := []string{"/", "/@alice", "/@bob", "/@nobody", "/nope", "/embed/@alice", "/tags/go", "/search?q=a",
		"/login", "/register", "/dashboard", "/settings", "/notifications", "/admin"}
	for _, c := range []*client{e.anon(), e.as(u["alice"]), e.as(root)} {
		for _, path := range paths {
			t.Run(path, func(t *testing.T) {
				rec := c.do("GET", path, nil)
				if rec.Code == http.StatusSeeOther {
					return
				}
				body := rec.Body.String()
				require.True(t, strings.HasPrefix(body, "<!doctype html>\n<html lang=\"en\""), body[:40])
				require.Contains(t, body, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
				require.Contains(t, body, `<link rel="stylesheet" href="/static/style.css?v=`)
				// No inline script or style, no external asset: every script is one of ours.
				for _, tag := range scriptTag.FindAllString(body, -1) {
					require.Regexp(t, ownScript, tag)
				}
				require.NotContains(t, body, "<style")
				require.NotRegexp(t, `<[^>]+\sstyle=`, body)
				require.NotContains(t, body, "//cdn")
				require.NotContains(t, body, "https://")
				require.NotRegexp(t, `\son[a-z]+=`, body) // no inline event handlers (onclick=…)
				// Every form control has a label.
				for _, tag := range regexp.MustCompile(`<(?:input|textarea|select)\b[^>]*>`).FindAllString(body, -1) {
					if strings.Contains(tag, `type="hidden"`) {
						continue
					}
					id := regexp.MustCompile(`\sid="([^"]+)"`).FindStringSubmatch(tag)
					require.NotNil(t, id, "control without id: %s", tag)
					if !strings.Contains(body, `for="`+id[1]+`"`) {
						require.Contains(t, tag, "aria-label", "control #%s has no label", id[1])
					}
				}
			})
		}
	}
}

func TestServerStaticScriptsAvoidHTMLSinks(t *testing.T) {
	// User text reaches the DOM only through textContent and DOM APIs.
	sub, err := fs.Sub(embeddedStatic, "static")
	require.NoError(t, err)
	matches, err := fs.Glob(sub, "*.js")
	require.NoError(t, err)
	require.NotEmpty(t, matches)
	for _, name := range matches {
		data, err := fs.ReadFile(sub, name)
		require.NoError(t, err)
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			require.False(t, strings.Contains(string(data), sink), "%s uses %s", name, sink)
		}
	}
}

func TestServerSecurityHeaders(t *testing.T) {
	t.Parallel()
	e, _ := seeded(t)
	for _, path := range []string{"/", "/@alice", "/@nobody", "/nope", "/healthz", "/api/v1/streams",
		"/api/v1/streams/nobody", "/static/style.css", "/hls/alice/index.m3u8", "/dash/alice/index.mpd", "/login", "/dashboard",
		"/api/v1/channels/alice/chat", "/embedx/@alice"} {
		t.Run(path, func(t *testing.T) {
			h := e.anon().do("GET", path, nil).Header()
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "same-origin", h.Get("Referrer-Policy"))
			require.Equal(t, "DENY", h.Get("X-Frame-Options"))
			csp := h.Get("Content-Security-Policy")
			require.Contains(t, csp, "frame-ancestors 'none'")
			require.Contains(t, csp, "script-src 'self';")
			require.NotContains(t, csp, "unsafe-inline")
		})
	}
	for _, path := range []string{"/embed/@alice", "/embed/@bob", "/embed/@nobody"} {
		t.Run(path, func(t *testing.T) {
			h := e.anon().do("GET", path, nil).Header()
			require.Empty(t, h.Values("X-Frame-Options"))
			csp := h.Get("Content-Security-Policy")
			require.True(t, strings.HasSuffix(csp, "frame-ancestors *"), csp)
			require.Contains(t, csp, "script-src 'self';")
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
		})
	}
}

func TestServerResolveError(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		logged  bool
	}{
		{"invalid", onair.Errorf(onair.EINVALID, "Bad name."), 400, "invalid", "Bad name.", false},
		{"unauthorized", onair.Errorf(onair.EUNAUTHORIZED, "Sign in."), 401, "unauthorized", "Sign in.", false},
		{"forbidden", onair.Errorf(onair.EFORBIDDEN, "Not yours."), 403, "forbidden", "Not yours.", false},
		{"not found", onair.Errorf(onair.ENOTFOUND, "No such channel."), 404, "not_found", "No such channel.", false},
		{"conflict", onair.Errorf(onair.ECONFLICT, "Taken."), 409, "conflict", "Taken.", false},
		{"too many", onair.Errorf(onair.ETOOMANY, "Slow down."), 429, "too_many_requests", "Slow down.", false},
		{"wrapped", errors.Join(errors.New("ctx"), onair.Errorf(onair.ECONFLICT, "Taken.")), 409, "conflict", "Taken.", false},
		{"internal code", onair.Errorf(onair.EINTERNAL, "db at 10.1.2.3 down"), 500, "internal", "Internal error.", true},
		{"unknown code", onair.Errorf("weird", "secret detail"), 500, "internal", "Internal error.", true},
		{"plain error", errors.New("open /var/secret: denied"), 500, "internal", "Internal error.", true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			req := httptest.NewRequest("GET", "/api/v1/x", nil)

			rec := httptest.NewRecorder()
			s.writeAPIError(rec, req, ca.err)
			require.Equal(t, ca.status, rec.Code)
			require.Equal(t, ctypeJSON, rec.Header().Get("Content-Type"))
			var body apiError
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.Equal(t, apiError{Error: apiErrorBody{Code: ca.code, Message: ca.message}}, body)

			if ca.logged {
				require.Contains(t, logs.String(), "level=ERROR msg=\"request failed\" method=GET path=/api/v1/x err=")
			} else {
				require.Empty(t, logs.String())
			}
		})
	}
}

// failingPlatform fails ChannelInfo, as a broken database does.
type failingPlatform struct {
	onair.PlatformChannelService
}

func (failingPlatform) ChannelInfo(context.Context, string) (*onair.ChannelInfo, error) {
	return nil, errors.New("database is locked")
}

func TestServerErrorPage(t *testing.T) {
	t.Parallel()
	e, _ := seeded(t)
	e.srv.Platform = failingPlatform{e.srv.Platform}

	rec := e.anon().do("GET", "/@alice", nil)
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Equal(t, ctypeHTML, rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Body.String(), "Internal error.")
	require.NotContains(t, rec.Body.String(), "database is locked")
	require.Contains(t, e.logs.String(), "database is locked")

	// The home page degrades to cards without titles.
	rec = e.anon().do("GET", "/", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `<h3 class="card-title">alice</h3>`)
	require.Contains(t, e.logs.String(), "level=WARN")
}

func TestServerPlayerAsset(t *testing.T) {
	t.Parallel()
	t.Run("missing", func(t *testing.T) {
		e, _ := seeded(t, func(s *Server) { s.static = staticFS(t, false) })
		body := e.anon().do("GET", "/@alice", nil).Body.String()
		require.Contains(t, body, "player asset missing: run make build")
		require.NotContains(t, body, "<video")
		require.NotContains(t, body, "hls.min.js")
		require.Contains(t, body, `<script src="/static/channel.js?v=`) // live/offline switching still works
		require.Equal(t, http.StatusNotFound, e.anon().do("GET", "/static/vendor/hls.min.js", nil).Code)
		require.Contains(t, e.anon().do("GET", "/embed/@alice", nil).Body.String(), "player asset missing")
	})

	t.Run("present", func(t *testing.T) {
		e, _ := seeded(t)
		body := e.anon().do("GET", "/@alice", nil).Body.String()
		require.NotContains(t, body, "player asset missing")
		require.Contains(t, body, "<video")
		rec := e.anon().do("GET", "/static/vendor/hls.min.js", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	})

	t.Run("embedded", func(t *testing.T) {
		// The real embedded FS: the placeholder keeps go:embed compiling on a fresh clone,
		// and the page matches whatever the build embedded.
		e, _ := seeded(t, func(s *Server) { s.static = nil })
		_, err := fs.Stat(embeddedStatic, "static/vendor/README.md")
		require.NoError(t, err)
		_, err = fs.Stat(embeddedStatic, "static/"+playerAssetPath)
		require.Equal(t, err == nil, e.srv.playerAsset)
		body := e.anon().do("GET", "/@alice", nil).Body.String()
		require.Equal(t, !e.srv.playerAsset, strings.Contains(body, "player asset missing: run make build"))
	})
}

func TestServerStatic(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, true)
	s := e.srv
	cases := []struct {
		path  string
		ctype string
	}{
		{"style.css", "text/css; charset=utf-8"},
		{"app.js", "text/javascript; charset=utf-8"},
		{"player.js", "text/javascript; charset=utf-8"},
		{"channel.js", "text/javascript; charset=utf-8"},
		{"chat.js", "text/javascript; charset=utf-8"},
		{"comments.js", "text/javascript; charset=utf-8"},
		{"dashboard.js", "text/javascript; charset=utf-8"},
		{"account.js", "text/javascript; charset=utf-8"},
		{"admin.js", "text/javascript; charset=utf-8"},
		{"notifications.js", "text/javascript; charset=utf-8"},
		{"home.js", "text/javascript; charset=utf-8"},
		{"favicon.svg", "image/svg+xml"},
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			want, err := fs.ReadFile(embeddedStatic, "static/"+ca.path)
			require.NoError(t, err)
			a := s.assets[ca.path]
			require.NotNil(t, a)
			c := e.anon()

			rec := c.do("GET", "/static/"+ca.path, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, ca.ctype, rec.Header().Get("Content-Type"))
			require.Equal(t, "public, max-age=3600", rec.Header().Get("Cache-Control"))
			require.Equal(t, `"`+a.version+`"`, rec.Header().Get("ETag"))
			require.Empty(t, rec.Header().Get("Content-Encoding"))
			require.Equal(t, want, rec.Body.Bytes())

			rec = c.do("GET", "/static/"+ca.path+"?v="+a.version, nil)
			require.Equal(t, "public, max-age=31536000, immutable", rec.Header().Get("Cache-Control"))

			rec = c.do("GET", "/static/"+ca.path+"?v=stale", nil)
			require.Equal(t, "public, max-age=3600", rec.Header().Get("Cache-Control"))

			c.header.Set("If-None-Match", `"`+a.version+`"`)
			rec = c.do("GET", "/static/"+ca.path, nil)
			require.Equal(t, http.StatusNotModified, rec.Code)
			require.Empty(t, rec.Body.Bytes())
			c.header.Del("If-None-Match")

			c.header.Set("Accept-Encoding", "br, gzip;q=0.8")
			rec = c.do("GET", "/static/"+ca.path, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, ca.ctype, rec.Header().Get("Content-Type"))
			if a.gz == nil {
				require.Empty(t, rec.Header().Get("Content-Encoding"))
				return
			}
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
			require.Equal(t, "Accept-Encoding", rec.Header().Get("Vary"))
			require.Equal(t, `"`+a.version+`-gz"`, rec.Header().Get("ETag"))
			zr, err := gzip.NewReader(rec.Body)
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestServerRTMPURL(t *testing.T) {
	cases := []struct {
		host string
		want string
	}{
		{"example.com:8080", "rtmp://example.com/live"},
		{"example.com", "rtmp://example.com/live"},
		{"192.0.2.7:80", "rtmp://192.0.2.7/live"},
		{"[2001:db8::1]:8080", "rtmp://[2001:db8::1]/live"},
		{"[::1]", "rtmp://[::1]/live"},
		{"", "rtmp://localhost/live"},
	}
	for _, ca := range cases {
		t.Run(ca.host, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = ca.host
			require.Equal(t, ca.want, defaultRTMPURL(req))
		})
	}

	t.Run("custom", func(t *testing.T) {
		e, _ := seeded(t, func(s *Server) {
			s.RTMPURL = func(*http.Request) string { return "rtmp://live.example.net:1936/live" }
		})
		body := e.anon().do("GET", "/@alice", nil).Body.String()
		require.Contains(t, body, "rtmp://live.example.net:1936/live/alice")
	})

	t.Run("rtmps on the dashboard", func(t *testing.T) {
		e, u := seeded(t)
		body := requireStatus(t, e.as(u["alice"]).do("GET", "/dashboard", nil), 200)
		require.NotContains(t, body, "obs-server-tls", "no RTMPS: one server URL")

		e, u = seeded(t, func(s *Server) {
			s.RTMPSURL = func(*http.Request) string { return "rtmps://live.example.net/live" }
		})
		body = requireStatus(t, e.as(u["alice"]).do("GET", "/dashboard", nil), 200)
		require.Contains(t, body, `<input id="obs-server" class="mono" readonly value="rtmp://example.com/live">`)
		require.Contains(t, body, `<input id="obs-server-tls" class="mono" readonly value="rtmps://live.example.net/live"`)
		require.Contains(t, body, `data-copy="obs-server-tls"`)
	})
}

func TestServerStart(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, true)
	full := *e.srv
	full.handler = nil
	cases := []struct {
		name  string
		unset func(*Server)
		err   string
	}{
		{"live", func(s *Server) { s.Live = nil }, "live directory is not set"},
		{"users", func(s *Server) { s.Users = nil }, "user service is not set"},
		{"accounts", func(s *Server) { s.Accounts = nil }, "account service is not set"},
		{"sessions", func(s *Server) { s.Sessions = nil }, "session service is not set"},
		{"keys", func(s *Server) { s.Keys = nil }, "stream key service is not set"},
		{"platform", func(s *Server) { s.Platform = nil }, "platform channel service is not set"},
		{"comments", func(s *Server) { s.Comments = nil }, "comment service is not set"},
		{"notifications", func(s *Server) { s.Notifications = nil }, "notification service is not set"},
		{"settings", func(s *Server) { s.Settings = nil }, "settings service is not set"},
		{"auth", func(s *Server) { s.Auth = nil }, "authenticator is not set"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			s := full
			ca.unset(&s)
			require.EqualError(t, s.Start(), ca.err)
		})
	}

	s := full
	s.SiteName, s.Logger = "", nil
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.NoError(t, s.Start())
	require.Equal(t, "onair", s.SiteName)
	require.NotNil(t, s.LoginThrottle)
	require.NotNil(t, s.LoginIPThrottle)
	require.NotNil(t, s.RegisterThrottle)

	t.Run("chat optional", func(t *testing.T) {
		e, _ := seeded(t, func(s *Server) { s.Chat = nil })
		requireAPIError(t, e.anon().do("GET", "/api/v1/channels/alice/chat", nil), 404, "not_found", "No such API endpoint.")
		body := e.anon().do("GET", "/@alice", nil).Body.String()
		require.NotContains(t, body, `id="chat"`)
		require.NotContains(t, body, "chat.js")
	})

	t.Run("site name from settings", func(t *testing.T) {
		e, u := seeded(t)
		root, err := e.users.FindUserByUsername(context.Background(), "boss")
		require.NoError(t, err)
		_, err = e.settings.UpdateSettings(context.Background(), root, onair.Settings{SiteName: "Club <TV>", RegistrationOpen: true})
		require.NoError(t, err)
		require.Contains(t, e.anon().do("GET", "/", nil).Body.String(), "<title>Live now · Club &lt;TV&gt;</title>")
		require.Contains(t, e.as(u["bob"]).do("GET", "/embed/@alice", nil).Body.String(), "on Club &lt;TV&gt;")
	})
}

func TestAgo(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "just now"},
		{30 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{59 * time.Minute, "59 minutes ago"},
		{time.Hour, "1 hour ago"},
		{25 * time.Hour, "1 day ago"},
		{29 * 24 * time.Hour, "29 days ago"},
		{40 * 24 * time.Hour, "on 2 Feb 2026"},
	}
	for _, ca := range cases {
		t.Run(ca.want, func(t *testing.T) {
			require.Equal(t, ca.want, ago(now, now.Add(-ca.d)))
		})
	}
}

func TestLocalPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/@alice", "/@alice"},
		{"/dashboard?x=1", "/dashboard?x=1"},
		{"", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/a\r\nb", "/"},
	}
	for _, ca := range cases {
		t.Run(ca.in, func(t *testing.T) {
			require.Equal(t, ca.want, localPath(ca.in))
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"br, gzip, deflate", true},
		{"gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"deflate, br", false},
		{"x-gzip", false},
	}
	for _, ca := range cases {
		t.Run(ca.header, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", ca.header)
			require.Equal(t, ca.want, acceptsGzip(req))
		})
	}
}

// FuzzServerPath checks that no request path makes the router fail or panic.
func FuzzServerPath(f *testing.F) {
	for _, p := range []string{"/", "/@alice", "/@", "/@@", "/@alice/x", "/static/", "/static/../x",
		"/api/v1/streams/", "/api/v1/streams/a/b", "/%00", "/@%FF", "/hls/x", "//@alice", "/embed/@alice",
		"/tags/%FF", "/search?q=%00", "/api/v1/videos/99999999999999999999/comments", "/api/v1/tags/x",
		"/api/v1/channels/alice", "/admin?page=-1"} {
		f.Add(p)
	}
	e, _ := seeded(f)
	f.Fuzz(func(t *testing.T, p string) {
		req, err := http.NewRequest("GET", "http://example.com"+p, nil)
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: status %d", p, rec.Code)
		}
	})
}

func TestServerMediaSkipsAuth(t *testing.T) {
	t.Parallel()
	e, _ := seeded(t)
	c := e.anon()
	c.bearer = "not-a-token" // the authenticator answers 401 wherever it runs
	for _, path := range []string{"/hls/alice/index.m3u8", "/dash/alice/index.mpd", "/static/style.css", "/healthz"} {
		requireStatus(t, c.do("GET", path, nil), 200)
	}
	requireAPIError(t, c.do("GET", "/api/v1/streams", nil), 401, "unauthorized", "Invalid API token.")
}
