package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

type sessionJSON struct {
	Username  string `json:"username"`
	CSRFToken string `json:"csrf_token"`
}

func TestAPIRegister(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, true)

	t.Run("first user is admin", func(t *testing.T) {
		c := e.anon()
		rec := c.do("POST", "/api/v1/register", map[string]string{
			"username": " First_One ", "email": "first@example.com", "password": "correct horse"})
		got := decodeBody[sessionJSON](t, rec)
		require.Equal(t, http.StatusCreated, rec.Code)
		require.Equal(t, "first_one", got.Username)
		require.NotEmpty(t, got.CSRFToken)
		require.Contains(t, c.cookies, auth.DefaultCookieName, "signed in at once")
		c.csrf = got.CSRFToken

		me := decodeBody[userJSON](t, c.do("GET", "/api/v1/me", nil))
		require.Equal(t, "first_one", me.Username)
		require.Equal(t, "first@example.com", me.Email)
		require.True(t, me.IsAdmin)
		require.False(t, me.Banned)
		require.Equal(t, now, me.CreatedAt)
	})

	t.Run("second user is not", func(t *testing.T) {
		c := e.anon()
		c.ip = "192.0.2.11"
		got := decodeBody[sessionJSON](t, c.do("POST", "/api/v1/register", map[string]string{
			"username": "second", "password": "correct horse"}))
		c.csrf = got.CSRFToken
		require.False(t, decodeBody[userJSON](t, c.do("GET", "/api/v1/me", nil)).IsAdmin)
	})

	cases := []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"taken", map[string]string{"username": "second", "password": "correct horse"}, 409, "conflict",
			`Username "second" is already taken.`},
		{"bad name", map[string]string{"username": "<script>", "password": "correct horse"}, 400, "invalid",
			"Username must be 3 to 30 characters of a-z, 0-9 and _."},
		{"reserved", map[string]string{"username": "admin", "password": "correct horse"}, 400, "invalid", ""},
		{"short password", map[string]string{"username": "third", "password": "short"}, 400, "invalid",
			"Password must be at least 8 characters."},
		{"bad email", map[string]string{"username": "third", "email": "nope", "password": "correct horse"}, 400, "invalid", ""},
		{"unknown field", map[string]any{"username": "third", "password": "correct horse", "admin": true}, 400, "invalid",
			`Unknown field "admin".`},
		{"empty", "", 400, "invalid", "Request body must be a JSON object."},
	}
	for i, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			c := e.anon()
			c.ip = "198.51.100." + strconv.Itoa(i)
			requireAPIError(t, c.do("POST", "/api/v1/register", ca.body), ca.status, ca.code, ca.msg)
			require.NotContains(t, c.cookies, auth.DefaultCookieName)
		})
	}

	t.Run("closed", func(t *testing.T) {
		first, err := e.users.FindUserByUsername(context.Background(), "first_one")
		require.NoError(t, err)
		admin := e.as(first)
		requireStatus(t, admin.do("PATCH", "/api/v1/admin/settings", map[string]any{"registration_open": false}), 200)
		c := e.anon()
		c.ip = "192.0.2.99"
		requireAPIError(t, c.do("POST", "/api/v1/register", map[string]string{"username": "late", "password": "correct horse"}),
			403, "forbidden", "Registration is closed on this site.")
		body := requireStatus(t, c.do("GET", "/register", nil), 200)
		require.Contains(t, body, "Registration is closed on this site.")
		require.NotContains(t, body, `id="register-form"`)
		requireStatus(t, admin.do("PATCH", "/api/v1/admin/settings", map[string]any{"registration_open": true}), 200)
	})

	t.Run("throttled per address", func(t *testing.T) {
		c := e.anon()
		c.ip = "203.0.113.7"
		for i := range DefaultRegisterMax {
			requireStatus(t, c.do("POST", "/api/v1/register", map[string]string{"username": "x", "password": "correct horse"}), 400)
			_ = i
		}
		rec := c.do("POST", "/api/v1/register", map[string]string{"username": "flood", "password": "correct horse"})
		requireAPIError(t, rec, 429, "too_many_requests", "Too many sign-ups from your address. Try again in 60 minutes.")
		require.Equal(t, "3600", rec.Header().Get("Retry-After"))
		c.ip = "203.0.113.8"
		requireStatus(t, c.do("POST", "/api/v1/register", map[string]string{"username": "flood", "password": "correct horse"}), 201)
	})
}

func TestAPILogin(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	alice := e.user("alice")
	e.user("bob")

	t.Run("ok", func(t *testing.T) {
		c := e.anon()
		rec := c.do("POST", "/api/v1/login", map[string]string{"username": "Alice", "password": password("alice")})
		got := decodeBody[sessionJSON](t, rec)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "alice", got.Username)
		require.Len(t, got.CSRFToken, 43)

		cookie := rec.Result().Cookies()[0]
		require.Equal(t, auth.DefaultCookieName, cookie.Name)
		require.True(t, cookie.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
		require.Equal(t, "/", cookie.Path)
		require.False(t, cookie.Secure, "plain http")
		require.Equal(t, int((30 * 24 * time.Hour).Seconds()), cookie.MaxAge)
		require.NotContains(t, rec.Body.String(), cookie.Value, "the session token is not in the body")

		c.csrf = got.CSRFToken
		require.Equal(t, alice.ID, decodeBody[userJSON](t, c.do("GET", "/api/v1/me", nil)).ID)

		// Logging in again replaces the session.
		old := c.cookies[auth.DefaultCookieName].Value
		requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}), 200)
		_, err := e.sessions.FindSession(context.Background(), onair.Secret(old))
		require.Equal(t, onair.EUNAUTHORIZED, onair.ErrorCode(err))
	})

	t.Run("secure cookie behind tls", func(t *testing.T) {
		e.srv.Auth.Secure = func(*http.Request) bool { return true }
		defer func() { e.srv.Auth.Secure = nil }()
		c := e.anon()
		c.ip = "192.0.2.50"
		rec := c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")})
		requireStatus(t, rec, 200)
		require.True(t, rec.Result().Cookies()[0].Secure)
	})

	t.Run("no user enumeration", func(t *testing.T) {
		c := e.anon()
		c.ip = "192.0.2.51"
		wrong := c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": "not her password"})
		unknown := c.do("POST", "/api/v1/login", map[string]string{"username": "nobody", "password": "not her password"})
		invalid := c.do("POST", "/api/v1/login", map[string]string{"username": "<b>", "password": "x"})
		for _, rec := range []*http.Response{wrong.Result(), unknown.Result(), invalid.Result()} {
			require.Equal(t, http.StatusUnauthorized, rec.StatusCode)
			require.Empty(t, rec.Cookies())
		}
		require.Equal(t, wrong.Body.String(), unknown.Body.String())
		require.Equal(t, wrong.Body.String(), invalid.Body.String())
		requireAPIError(t, wrong, 401, "unauthorized", "Invalid username or password.")
	})

	t.Run("timing", func(t *testing.T) {
		// An unknown user costs a password hash too: the two take about as long.
		c := e.anon()
		c.ip = "192.0.2.52"
		measure := func(name string) time.Duration {
			best := time.Hour
			for range 3 {
				start := time.Now()
				requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{"username": name, "password": "wrong password"}), 401)
				best = min(best, time.Since(start))
				e.srv.LoginThrottle.Reset("user:" + name)
				e.srv.LoginIPThrottle.Reset("ip:" + c.ip)
			}
			return best
		}
		known, unknown := measure("alice"), measure("nobody_at_all")
		ratio := float64(unknown) / float64(known)
		require.True(t, ratio > 0.3 && ratio < 3, "known %v, unknown %v", known, unknown)
	})

	t.Run("missing fields", func(t *testing.T) {
		requireAPIError(t, e.anon().do("POST", "/api/v1/login", map[string]string{"username": "alice"}), 400, "invalid",
			"Enter your username and password.")
	})

	t.Run("throttled per account", func(t *testing.T) {
		for i := range DefaultLoginMax {
			c := e.anon()
			c.ip = "198.51.100." + strconv.Itoa(100+i) // a different address each time
			requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{"username": "bob", "password": "guess"}), 401)
		}
		c := e.anon()
		c.ip = "198.51.100.200"
		rec := c.do("POST", "/api/v1/login", map[string]string{"username": "bob", "password": password("bob")})
		requireAPIError(t, rec, 429, "too_many_requests", "Too many failed logins. Try again in 15 minutes.")
		require.Equal(t, "900", rec.Header().Get("Retry-After"))
		// Unknown accounts are throttled the same way.
		for range DefaultLoginMax {
			c.do("POST", "/api/v1/login", map[string]string{"username": "ghost", "password": "guess"})
		}
		require.Equal(t, rec.Body.String(),
			c.do("POST", "/api/v1/login", map[string]string{"username": "ghost", "password": "guess"}).Body.String())
		// Other accounts are not affected.
		c.ip = "198.51.100.201"
		requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}), 200)
	})

	t.Run("throttled per address", func(t *testing.T) {
		c := e.anon()
		c.ip = "203.0.113.9"
		for i := range DefaultLoginIPMax {
			requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{
				"username": "user" + strconv.Itoa(i), "password": "guess"}), 401)
		}
		requireAPIError(t, c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}),
			429, "too_many_requests", "")
	})

	t.Run("banned", func(t *testing.T) {
		u := e.user("mallory")
		boss, err := e.users.FindUserByUsername(context.Background(), "boss")
		require.NoError(t, err)
		require.NoError(t, e.users.SetUserBanned(context.Background(), boss, u.ID, true))
		c := e.anon()
		c.ip = "192.0.2.60"
		requireAPIError(t, c.do("POST", "/api/v1/login", map[string]string{"username": "mallory", "password": password("mallory")}),
			403, "forbidden", "")
		require.NotContains(t, c.cookies, auth.DefaultCookieName)
	})
}

func TestAPILogout(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	c := e.as(e.user("alice"))
	requireStatus(t, c.do("GET", "/api/v1/me", nil), 200)
	token := c.cookies[auth.DefaultCookieName].Value

	rec := c.do("POST", "/api/v1/logout", nil)
	requireStatus(t, rec, http.StatusNoContent)
	require.Equal(t, -1, rec.Result().Cookies()[0].MaxAge)
	require.NotContains(t, c.cookies, auth.DefaultCookieName)

	// The old cookie is dead even if the browser kept it.
	c.cookies[auth.DefaultCookieName] = &http.Cookie{Name: auth.DefaultCookieName, Value: token}
	requireAPIError(t, c.do("GET", "/api/v1/me", nil), 401, "unauthorized", "Sign in first.")

	// Logging out without a session is fine.
	requireStatus(t, e.anon().do("POST", "/api/v1/logout", nil), http.StatusNoContent)
}

func TestAPICSRF(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	alice := e.user("alice")
	c := e.as(alice)
	body := map[string]string{"title": "t"}

	csrf := c.csrf
	c.csrf = ""
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", body), 403, "forbidden", "Missing or bad CSRF token.")
	c.csrf = "wrong"
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", body), 403, "forbidden", "Missing or bad CSRF token.")
	c.csrf = e.as(e.user("bob")).csrf // another session's token
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", body), 403, "forbidden", "Missing or bad CSRF token.")
	c.csrf = csrf
	requireStatus(t, c.do("PATCH", "/api/v1/me/channel", body), 200)

	// Every state-changing cookie call needs it.
	c.csrf = ""
	for _, call := range []struct{ method, path string }{
		{"POST", "/api/v1/logout"}, {"POST", "/api/v1/tokens"}, {"POST", "/api/v1/me/stream-key"},
		{"POST", "/api/v1/me/password"}, {"DELETE", "/api/v1/me"}, {"PUT", "/api/v1/channels/bob/follow"},
		{"DELETE", "/api/v1/channels/bob/follow"}, {"POST", "/api/v1/videos/1/comments"},
		{"PATCH", "/api/v1/comments/1"}, {"DELETE", "/api/v1/comments/1"}, {"POST", "/api/v1/me/notifications/read"},
		{"POST", "/api/v1/admin/users/bob/ban"}, {"PATCH", "/api/v1/admin/settings"}, {"POST", "/api/v1/login"},
		{"POST", "/logout"},
	} {
		requireAPIError(t, c.do(call.method, call.path, nil), 403, "forbidden", "Missing or bad CSRF token.")
	}
	// Reads need none.
	requireStatus(t, c.do("GET", "/api/v1/me/stream-key", nil), 200)

	// A cross-origin request is refused even with the token.
	c.csrf = csrf
	c.header.Set("Origin", "http://evil.example")
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", body), 403, "forbidden", "Cross-origin request refused.")
	c.header.Set("Origin", "http://example.com:8080")
	requireStatus(t, c.do("PATCH", "/api/v1/me/channel", body), 200)

	// Bearer clients need no token.
	b := e.bearerFor(alice)
	requireStatus(t, b.do("PATCH", "/api/v1/me/channel", body), 200)
	b.bearer = "not-a-token"
	requireAPIError(t, b.do("GET", "/api/v1/me", nil), 401, "unauthorized", "Invalid API token.")
}

func TestAPITokens(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	c := e.as(e.user("alice"))

	requireAPIError(t, e.anon().do("POST", "/api/v1/tokens", nil), 401, "unauthorized", "Sign in first.")
	rec := c.do("POST", "/api/v1/tokens", map[string]string{"name": "my bot"})
	got := decodeBody[tokenResponse](t, rec)
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "my bot", got.Name)
	require.NotEmpty(t, got.Token)
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))

	b := e.anon()
	b.bearer = got.Token
	require.Equal(t, "alice", decodeBody[userJSON](t, b.do("GET", "/api/v1/me", nil)).Username)

	// Without a body too.
	got = decodeBody[tokenResponse](t, c.do("POST", "/api/v1/tokens", nil))
	require.Equal(t, "API token", got.Name)
	requireAPIError(t, c.do("POST", "/api/v1/tokens", map[string]string{"name": strings.Repeat("x", 101)}), 400, "invalid",
		"Token name must be at most 100 characters.")
	requireAPIError(t, c.do("POST", "/api/v1/tokens", map[string]any{"name": 5}), 400, "invalid",
		`Field "name" must be a string.`)
}

func TestAPIStreamKey(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	ctx := context.Background()
	alice := e.user("alice")
	e.user("bob")
	c := e.as(alice)
	e.live.streams = []onair.LiveStream{aliceStream()}

	requireAPIError(t, e.anon().do("GET", "/api/v1/me/stream-key", nil), 401, "unauthorized", "Sign in first.")
	requireAPIError(t, e.anon().do("POST", "/api/v1/me/stream-key", nil), 401, "unauthorized", "Sign in first.")

	key, err := e.keys.StreamKey(ctx, alice.ID)
	require.NoError(t, err)
	rec := c.do("GET", "/api/v1/me/stream-key", nil)
	require.Equal(t, streamKeyResponse{StreamKey: key.Reveal()}, decodeBody[streamKeyResponse](t, rec))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))

	// Bob only ever sees his own key.
	bobKey := decodeBody[streamKeyResponse](t, e.as(e.mustFind("bob")).do("GET", "/api/v1/me/stream-key", nil))
	require.NotEqual(t, key.Reveal(), bobKey.StreamKey)
	// Nothing public carries it.
	for _, path := range []string{"/api/v1/channels/alice", "/api/v1/streams", "/api/v1/streams/alice", "/@alice", "/", "/dashboard"} {
		require.NotContains(t, c.do("GET", path, nil).Body.String(), key.Reveal(), path)
	}

	// Rotation: the old key stops at once and the live stream on it is cut.
	rotated := decodeBody[streamKeyResponse](t, c.do("POST", "/api/v1/me/stream-key", nil))
	require.NotEqual(t, key.Reveal(), rotated.StreamKey)
	_, err = e.keys.ChannelByStreamKey(ctx, key)
	require.Equal(t, onair.ENOTFOUND, onair.ErrorCode(err))
	ch, err := e.keys.ChannelByStreamKey(ctx, onair.StreamKey(rotated.StreamKey))
	require.NoError(t, err)
	require.Equal(t, "alice", ch.Name)
	require.Equal(t, []string{"alice"}, e.endedStreams())
	_, live := e.live.LiveStream("alice")
	require.False(t, live)
	require.Equal(t, rotated, decodeBody[streamKeyResponse](t, c.do("GET", "/api/v1/me/stream-key", nil)))

	requireAPIError(t, c.do("POST", "/api/v1/me/stream-key", map[string]string{"x": "y"}), 400, "invalid", `Unknown field "x".`)
	require.NotContains(t, e.logs.String(), rotated.StreamKey)
}

func (e *env) mustFind(name string) *onair.User {
	e.t.Helper()
	u, err := e.users.FindUserByUsername(context.Background(), name)
	require.NoError(e.t, err)
	return u
}

func TestAPIUpdateChannel(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	c := e.as(e.user("alice"))

	rec := c.do("PATCH", "/api/v1/me/channel", map[string]any{
		"title": "  Alice codes ", "description": "Go\nand more", "tags": []string{"Go", "Coding", "go"}, "recording": true})
	got := decodeBody[channelJSON](t, rec)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "alice", got.Username)
	require.Equal(t, "Alice codes", got.Title)
	require.Equal(t, "Go\nand more", got.Description)
	require.Equal(t, []string{"go", "coding"}, got.Tags)
	require.True(t, got.Recording)

	// Absent fields are left alone.
	got = decodeBody[channelJSON](t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"recording": false}))
	require.Equal(t, "Alice codes", got.Title)
	require.Equal(t, []string{"go", "coding"}, got.Tags)
	require.False(t, got.Recording)

	// null is the same as absent; [] clears.
	got = decodeBody[channelJSON](t, c.do("PATCH", "/api/v1/me/channel", `{"tags":null}`))
	require.Equal(t, []string{"go", "coding"}, got.Tags)
	got = decodeBody[channelJSON](t, c.do("PATCH", "/api/v1/me/channel", `{"tags":[]}`))
	require.Equal(t, []string{}, got.Tags)

	tags := make([]string, 11)
	for i := range tags {
		tags[i] = "t" + strconv.Itoa(i)
	}
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"tags": tags}), 400, "invalid", "")
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"tags": []string{"<script>"}}), 400, "invalid", "")
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"title": strings.Repeat("x", 141)}), 400, "invalid", "")
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"owner": "bob"}), 400, "invalid", `Unknown field "owner".`)
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"recording": "yes"}), 400, "invalid",
		`Field "recording" must be true or false.`)
	requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", map[string]any{"tags": "go"}), 400, "invalid",
		`Field "tags" must be an array.`)
	requireAPIError(t, e.anon().do("PATCH", "/api/v1/me/channel", map[string]any{"title": "x"}), 401, "unauthorized", "")
}

func TestAPIChangePassword(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	alice := e.user("alice")
	c, other := e.as(alice), e.as(alice)
	b := e.bearerFor(alice)
	bob := e.bearerFor(e.user("bob"))

	requireAPIError(t, c.do("POST", "/api/v1/me/password", map[string]string{
		"old_password": "wrong", "new_password": "new password 1"}), 403, "forbidden", "Your current password is not right.")
	requireAPIError(t, c.do("POST", "/api/v1/me/password", map[string]string{
		"old_password": password("alice"), "new_password": "short"}), 400, "invalid", "Password must be at least 8 characters.")
	requireAPIError(t, c.do("POST", "/api/v1/me/password", map[string]string{"old_password": password("alice")}), 400, "invalid",
		"Enter your current and your new password.")
	requireAPIError(t, e.anon().do("POST", "/api/v1/me/password", map[string]string{"old_password": "a", "new_password": "b"}),
		401, "unauthorized", "")

	requireStatus(t, c.do("POST", "/api/v1/me/password", map[string]string{
		"old_password": password("alice"), "new_password": "new password 1"}), http.StatusNoContent)
	requireStatus(t, c.do("GET", "/api/v1/me", nil), 200)                         // this session stays
	requireStatus(t, other.do("GET", "/api/v1/me", nil), http.StatusUnauthorized) // others end
	requireStatus(t, b.do("GET", "/api/v1/me", nil), http.StatusUnauthorized)     // API tokens are revoked
	requireStatus(t, bob.do("GET", "/api/v1/me", nil), 200)                       // other users' are not

	login := e.anon()
	requireStatus(t, login.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}), 401)
	requireStatus(t, login.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": "new password 1"}), 200)

	// Wrong old passwords are throttled like logins.
	for range DefaultLoginMax {
		c.do("POST", "/api/v1/me/password", map[string]string{"old_password": "guess", "new_password": "new password 2"})
	}
	requireAPIError(t, c.do("POST", "/api/v1/me/password", map[string]string{
		"old_password": "new password 1", "new_password": "new password 2"}), 429, "too_many_requests", "")
}

func TestAPIDeleteMe(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	ctx := context.Background()
	alice, bob := e.user("alice"), e.user("bob")
	require.NoError(t, e.channels.Follow(ctx, bob, "alice"))
	v, err := e.comments.ChannelVideo(ctx, "bob")
	require.NoError(t, err)
	_, err = e.comments.CreateComment(ctx, alice, v.ID, "hello bob")
	require.NoError(t, err)
	e.live.streams = []onair.LiveStream{aliceStream()}
	c := e.as(alice)

	requireAPIError(t, c.do("DELETE", "/api/v1/me", map[string]string{"password": "wrong"}), 403, "forbidden",
		"Your password is not right.")
	requireAPIError(t, c.do("DELETE", "/api/v1/me", map[string]string{}), 400, "invalid", "Enter your password to delete your account.")
	requireAPIError(t, e.anon().do("DELETE", "/api/v1/me", map[string]string{"password": "x"}), 401, "unauthorized", "")
	require.Empty(t, e.endedStreams())

	rec := c.do("DELETE", "/api/v1/me", map[string]string{"password": password("alice")})
	requireStatus(t, rec, http.StatusNoContent)
	require.Equal(t, -1, rec.Result().Cookies()[0].MaxAge)
	require.Equal(t, []string{"alice"}, e.endedStreams())

	_, err = e.users.FindUserByUsername(ctx, "alice")
	require.Equal(t, onair.ENOTFOUND, onair.ErrorCode(err))
	requireStatus(t, e.anon().do("GET", "/api/v1/channels/alice", nil), 404)
	list, err := e.comments.Comments(ctx, v.ID, 0, 10)
	require.NoError(t, err)
	require.Empty(t, list)
	requireStatus(t, e.anon().do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}), 401)
}

func TestAPIChannels(t *testing.T) {
	t.Parallel()
	e, u := seeded(t, func(s *Server) {
		s.Viewers = func(ch string) int {
			if ch == "alice" {
				return 2
			}
			return 0
		}
	})
	ctx := context.Background()

	t.Run("anonymous", func(t *testing.T) {
		rec := e.anon().do("GET", "/api/v1/channels/alice", nil)
		var got map[string]any
		got = decodeBody[map[string]any](t, rec)
		require.Equal(t, "alice", got["username"])
		require.Equal(t, "Alice codes", got["title"])
		require.Equal(t, "Late-night Go.", got["description"])
		require.Equal(t, []any{"go", "coding"}, got["tags"])
		require.Equal(t, true, got["live"])
		require.Equal(t, 5.0, got["viewers"], "3 from the directory, 2 from Viewers")
		require.Equal(t, 0.0, got["followers"])
		require.NotContains(t, got, "following")
		require.Equal(t, 5.0, got["stream"].(map[string]any)["viewers"])
		require.Nil(t, got["last_live_at"])

		got = decodeBody[map[string]any](t, e.anon().do("GET", "/api/v1/channels/bob", nil))
		require.Equal(t, false, got["live"])
		require.Equal(t, "2026-03-12T10:00:00Z", got["last_live_at"])
		require.NotContains(t, got, "stream")
	})

	t.Run("unknown", func(t *testing.T) {
		requireAPIError(t, e.anon().do("GET", "/api/v1/channels/nobody", nil), 404, "not_found", "There is no channel @nobody.")
		requireAPIError(t, e.anon().do("GET", "/api/v1/channels/%3Cx%3E", nil), 404, "not_found", "There is no channel @<x>.")
	})

	t.Run("follow", func(t *testing.T) {
		bob := e.as(u["bob"])
		require.Equal(t, false, *decodeBody[channelJSON](t, bob.do("GET", "/api/v1/channels/alice", nil)).Following)
		got := decodeBody[followResponse](t, bob.do("PUT", "/api/v1/channels/alice/follow", nil))
		require.Equal(t, followResponse{Following: true, Followers: 1}, got)
		got = decodeBody[followResponse](t, bob.do("PUT", "/api/v1/channels/alice/follow", nil)) // idempotent
		require.Equal(t, followResponse{Following: true, Followers: 1}, got)
		require.Equal(t, true, *decodeBody[channelJSON](t, bob.do("GET", "/api/v1/channels/alice", nil)).Following)
		require.Equal(t, 1, decodeBody[channelJSON](t, e.anon().do("GET", "/api/v1/channels/alice", nil)).Followers)

		requireStatus(t, e.as(u["carol"]).do("PUT", "/api/v1/channels/bob/follow", nil), 200)

		list := decodeBody[[]channelJSON](t, bob.do("GET", "/api/v1/me/following", nil))
		require.Len(t, list, 1)
		require.Equal(t, "alice", list[0].Username)
		require.True(t, list[0].Live)
		require.Equal(t, 5, list[0].Viewers)

		got = decodeBody[followResponse](t, bob.do("DELETE", "/api/v1/channels/alice/follow", nil))
		require.Equal(t, followResponse{Following: false, Followers: 0}, got)
		requireStatus(t, bob.do("DELETE", "/api/v1/channels/alice/follow", nil), 200)
		require.Equal(t, []channelJSON{}, decodeBody[[]channelJSON](t, bob.do("GET", "/api/v1/me/following", nil)))

		requireAPIError(t, bob.do("PUT", "/api/v1/channels/bob/follow", nil), 400, "invalid", "")
		requireAPIError(t, bob.do("PUT", "/api/v1/channels/nobody/follow", nil), 404, "not_found", "There is no channel @nobody.")
		requireAPIError(t, e.anon().do("PUT", "/api/v1/channels/alice/follow", nil), 401, "unauthorized", "Sign in first.")
		requireAPIError(t, e.anon().do("GET", "/api/v1/me/following", nil), 401, "unauthorized", "Sign in first.")
	})

	t.Run("streams sorted by viewers", func(t *testing.T) {
		e.live.streams = []onair.LiveStream{
			{Channel: "carol", Viewers: 1}, aliceStream(), {Channel: "bob", Viewers: 4}, {Channel: "zed", Viewers: 4}}
		defer func() { e.live.streams = []onair.LiveStream{aliceStream()} }()
		got := decodeBody[[]onair.LiveStream](t, e.anon().do("GET", "/api/v1/streams", nil))
		var names []string
		var viewers []int
		for _, s := range got {
			names, viewers = append(names, s.Channel), append(viewers, s.Viewers)
		}
		require.Equal(t, []string{"alice", "bob", "zed", "carol"}, names)
		require.Equal(t, []int{5, 4, 4, 1}, viewers)
		require.Equal(t, "carol", e.live.streams[0].Channel, "the directory's slice is not reordered")
		require.Equal(t, 3, e.live.streams[1].Viewers)

		body := e.anon().do("GET", "/", nil).Body.String()
		require.Less(t, strings.Index(body, `href="/@alice"`), strings.Index(body, `href="/@bob"`))
		require.Less(t, strings.Index(body, `href="/@zed"`), strings.Index(body, `href="/@carol"`))
	})

	t.Run("stream", func(t *testing.T) {
		got := decodeBody[onair.LiveStream](t, e.anon().do("GET", "/api/v1/streams/alice", nil))
		want := aliceStream()
		want.Viewers = 5
		require.Equal(t, want, got)
		requireAPIError(t, e.anon().do("GET", "/api/v1/streams/%3Cx%3E", nil), 404, "not_found", "No such stream.")
	})

	t.Run("empty streams is an array", func(t *testing.T) {
		empty := mustEnv(t, true)
		rec := empty.anon().do("GET", "/api/v1/streams", nil)
		require.Equal(t, "[]\n", rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})

	t.Run("tags", func(t *testing.T) {
		got := decodeBody[[]channelJSON](t, e.anon().do("GET", "/api/v1/tags/GO", nil))
		require.Len(t, got, 1)
		require.Equal(t, "alice", got[0].Username)
		require.Equal(t, []channelJSON{}, decodeBody[[]channelJSON](t, e.anon().do("GET", "/api/v1/tags/none", nil)))

		tags := decodeBody[[]onair.TagCount](t, e.anon().do("GET", "/api/v1/tags", nil))
		require.ElementsMatch(t, []onair.TagCount{{Tag: "go", Count: 1}, {Tag: "coding", Count: 1}, {Tag: "garden", Count: 1}}, tags)
	})

	t.Run("search", func(t *testing.T) {
		got := decodeBody[[]channelJSON](t, e.anon().do("GET", "/api/v1/search?q=GARDEN", nil))
		require.Len(t, got, 1)
		require.Equal(t, "bob", got[0].Username)
		got = decodeBody[[]channelJSON](t, e.anon().do("GET", "/api/v1/search?q=c", nil))
		require.Equal(t, "alice", got[0].Username, "live first")
		requireAPIError(t, e.anon().do("GET", "/api/v1/search?q=+", nil), 400, "invalid", "Give a search term: ?q=…")
		requireAPIError(t, e.anon().do("GET", "/api/v1/search?q="+strings.Repeat("x", 101), nil), 400, "invalid",
			"Search terms must be at most 100 characters.")
	})
	_ = ctx
}

func TestAPIComments(t *testing.T) {
	t.Parallel()
	e, u := seeded(t)
	ctx := context.Background()
	v, err := e.comments.ChannelVideo(ctx, "alice")
	require.NoError(t, err)
	path := "/api/v1/videos/" + strconv.FormatInt(v.ID, 10) + "/comments"
	alice, bob, carol := e.as(u["alice"]), e.as(u["bob"]), e.as(u["carol"])
	boss := e.as(e.mustFind("boss"))

	require.Equal(t, []onair.Comment{}, decodeBody[[]onair.Comment](t, e.anon().do("GET", path, nil)))
	requireAPIError(t, e.anon().do("POST", path, map[string]string{"text": "hi"}), 401, "unauthorized", "Sign in first.")

	rec := bob.do("POST", path, map[string]string{"text": "First!"})
	c1 := decodeBody[onair.Comment](t, rec)
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "bob", c1.User)
	require.Equal(t, "First!", c1.Text)
	require.Equal(t, v.ID, c1.VideoID)
	c2 := decodeBody[onair.Comment](t, carol.do("POST", path, map[string]string{"text": "Second"}))
	c3 := decodeBody[onair.Comment](t, carol.do("POST", path, map[string]string{"text": "Third"}))

	list := decodeBody[[]onair.Comment](t, e.anon().do("GET", path, nil))
	require.Len(t, list, 3)
	require.Equal(t, []int64{c1.ID, c2.ID, c3.ID}, []int64{list[0].ID, list[1].ID, list[2].ID})
	list = decodeBody[[]onair.Comment](t, e.anon().do("GET", path+"?offset=1&limit=1", nil))
	require.Equal(t, c2.ID, list[0].ID)
	requireAPIError(t, e.anon().do("GET", path+"?limit=0", nil), 400, "invalid", "limit must be a number from 1 to 200.")
	requireAPIError(t, e.anon().do("GET", path+"?offset=x", nil), 400, "invalid", "offset must be a number of at least 0.")

	requireAPIError(t, bob.do("POST", path, map[string]string{"text": "  "}), 400, "invalid", "")
	requireAPIError(t, bob.do("POST", path, map[string]string{"text": strings.Repeat("x", 5001)}), 400, "invalid", "")
	requireAPIError(t, bob.do("POST", "/api/v1/videos/999999/comments", map[string]string{"text": "x"}), 404, "not_found", "")
	requireAPIError(t, bob.do("POST", "/api/v1/videos/abc/comments", map[string]string{"text": "x"}), 404, "not_found", "No such video.")
	requireAPIError(t, bob.do("POST", "/api/v1/videos/0/comments", map[string]string{"text": "x"}), 404, "not_found", "No such video.")

	c1path := "/api/v1/comments/" + strconv.FormatInt(c1.ID, 10)
	// Only the author edits.
	requireAPIError(t, carol.do("PATCH", c1path, map[string]string{"text": "hacked"}), 403, "forbidden", "")
	requireAPIError(t, alice.do("PATCH", c1path, map[string]string{"text": "hacked"}), 403, "forbidden", "")
	requireAPIError(t, e.anon().do("PATCH", c1path, map[string]string{"text": "hacked"}), 401, "unauthorized", "")
	edited := decodeBody[onair.Comment](t, bob.do("PATCH", c1path, map[string]string{"text": "First, edited"}))
	require.Equal(t, "First, edited", edited.Text)
	require.NotNil(t, edited.EditedAt)
	requireAPIError(t, bob.do("PATCH", "/api/v1/comments/999999", map[string]string{"text": "x"}), 404, "not_found", "")

	// Author, channel owner and admins delete; nobody else.
	requireAPIError(t, carol.do("DELETE", c1path, nil), 403, "forbidden", "")
	requireAPIError(t, e.anon().do("DELETE", c1path, nil), 401, "unauthorized", "")
	requireStatus(t, bob.do("DELETE", c1path, nil), http.StatusNoContent)
	requireStatus(t, alice.do("DELETE", "/api/v1/comments/"+strconv.FormatInt(c2.ID, 10), nil), http.StatusNoContent)
	requireStatus(t, boss.do("DELETE", "/api/v1/comments/"+strconv.FormatInt(c3.ID, 10), nil), http.StatusNoContent)
	requireAPIError(t, bob.do("DELETE", c1path, nil), 404, "not_found", "")
	require.Equal(t, []onair.Comment{}, decodeBody[[]onair.Comment](t, e.anon().do("GET", path, nil)))

	// The channel page shows the buttons each viewer may use.
	c4 := decodeBody[onair.Comment](t, bob.do("POST", path, map[string]string{"text": "Fourth"}))
	li := func(c *client) string {
		body := c.do("GET", "/@alice", nil).Body.String()
		i := strings.Index(body, `id="comment-`+strconv.FormatInt(c4.ID, 10)+`"`)
		require.Positive(t, i)
		return body[i : i+strings.Index(body[i:], "</li>")]
	}
	require.NotContains(t, li(e.anon()), "data-action")
	require.NotContains(t, li(carol), "data-action")
	require.Contains(t, li(bob), `data-action="edit"`)
	require.Contains(t, li(bob), `data-action="delete"`)
	require.NotContains(t, li(alice), `data-action="edit"`)
	require.Contains(t, li(alice), `data-action="delete"`)
	require.Contains(t, li(boss), `data-action="delete"`)
	require.Contains(t, li(e.anon()), "Fourth")
}

func TestAPINotifications(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	ctx := context.Background()
	alice, bob := e.user("alice"), e.user("bob")
	require.NoError(t, e.notes.Notify(ctx, []int64{bob.ID}, onair.Notification{Kind: "live", Channel: "alice", Text: "@alice is live"}))
	require.NoError(t, e.notes.Notify(ctx, []int64{bob.ID}, onair.Notification{Kind: "live", Channel: "alice", Text: "@alice is live again"}))
	c := e.as(bob)

	got := decodeBody[notificationsResponse](t, c.do("GET", "/api/v1/me/notifications", nil))
	require.Equal(t, 2, got.Unread)
	require.Len(t, got.Notifications, 2)
	require.Equal(t, "@alice is live again", got.Notifications[0].Text, "newest first")
	require.Equal(t, "live", got.Notifications[0].Kind)
	require.Equal(t, "alice", got.Notifications[0].Channel)
	require.Nil(t, got.Notifications[0].ReadAt)

	// Alice sees none of Bob's.
	mine := decodeBody[notificationsResponse](t, e.as(alice).do("GET", "/api/v1/me/notifications", nil))
	require.Equal(t, notificationsResponse{Unread: 0, Notifications: []*onair.Notification{}}, mine)

	requireStatus(t, c.do("POST", "/api/v1/me/notifications/read", nil), http.StatusNoContent)
	got = decodeBody[notificationsResponse](t, c.do("GET", "/api/v1/me/notifications", nil))
	require.Equal(t, 0, got.Unread)
	require.NotNil(t, got.Notifications[0].ReadAt)

	requireAPIError(t, e.anon().do("GET", "/api/v1/me/notifications", nil), 401, "unauthorized", "")
	requireAPIError(t, e.anon().do("POST", "/api/v1/me/notifications/read", nil), 401, "unauthorized", "")
}

func TestAPIAdmin(t *testing.T) {
	t.Parallel()
	e, u := seeded(t)
	ctx := context.Background()
	boss := e.as(e.mustFind("boss"))
	bob := e.as(u["bob"])
	aliceSession := e.as(u["alice"])

	t.Run("users", func(t *testing.T) {
		got := decodeBody[[]userJSON](t, boss.do("GET", "/api/v1/admin/users", nil))
		require.Len(t, got, 4)
		require.Equal(t, "carol", got[0].Username, "newest first")
		require.Equal(t, "boss", got[3].Username)
		require.True(t, got[3].IsAdmin)
		require.Equal(t, "carol@example.com", got[0].Email)
		for _, j := range got {
			require.Equal(t, j.Username == "alice", *j.Live, j.Username)
		}
		got = decodeBody[[]userJSON](t, boss.do("GET", "/api/v1/admin/users?offset=1&limit=2", nil))
		require.Equal(t, []string{"bob", "alice"}, []string{got[0].Username, got[1].Username})

		requireAPIError(t, bob.do("GET", "/api/v1/admin/users", nil), 403, "forbidden", "Only site admins may do this.")
		requireAPIError(t, e.anon().do("GET", "/api/v1/admin/users", nil), 401, "unauthorized", "Sign in first.")
	})

	t.Run("end stream", func(t *testing.T) {
		requireAPIError(t, bob.do("POST", "/api/v1/admin/streams/alice/end", nil), 403, "forbidden", "")
		requireAPIError(t, e.anon().do("POST", "/api/v1/admin/streams/alice/end", nil), 401, "unauthorized", "")
		require.Empty(t, e.endedStreams())
		requireStatus(t, boss.do("POST", "/api/v1/admin/streams/alice/end", nil), http.StatusNoContent)
		require.Equal(t, []string{"alice"}, e.endedStreams())
		requireAPIError(t, boss.do("POST", "/api/v1/admin/streams/alice/end", nil), 404, "not_found", "@alice is not live.")
		e.live.streams = []onair.LiveStream{aliceStream()}
	})

	t.Run("ban", func(t *testing.T) {
		b := e.bearerFor(u["alice"])
		requireStatus(t, b.do("GET", "/api/v1/me", nil), 200)
		requireAPIError(t, bob.do("POST", "/api/v1/admin/users/alice/ban", nil), 403, "forbidden", "")
		requireAPIError(t, boss.do("POST", "/api/v1/admin/users/nobody/ban", nil), 404, "not_found", `There is no user "nobody".`)
		requireAPIError(t, boss.do("POST", "/api/v1/admin/users/boss/ban", nil), 400, "invalid", "")

		got := decodeBody[userJSON](t, boss.do("POST", "/api/v1/admin/users/alice/ban", nil))
		require.True(t, got.Banned)
		require.Contains(t, e.endedStreams(), "alice")
		requireStatus(t, aliceSession.do("GET", "/api/v1/me", nil), http.StatusUnauthorized) // signed out
		c := e.anon()
		c.ip = "192.0.2.77"
		requireAPIError(t, c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}),
			403, "forbidden", "")
		require.True(t, *decodeBody[[]userJSON](t, boss.do("GET", "/api/v1/admin/users", nil))[2].Live == false)

		// A banned user's API token makes a request anonymous.
		requireAPIError(t, b.do("GET", "/api/v1/me", nil), 401, "unauthorized", "Sign in first.")
		requireAPIError(t, b.do("PATCH", "/api/v1/me/channel", map[string]string{"title": "x"}), 401, "unauthorized", "")
		requireAPIError(t, b.do("GET", "/api/v1/me/stream-key", nil), 401, "unauthorized", "")

		got = decodeBody[userJSON](t, boss.do("POST", "/api/v1/admin/users/alice/unban", nil))
		require.False(t, got.Banned)
		requireStatus(t, c.do("POST", "/api/v1/login", map[string]string{"username": "alice", "password": password("alice")}), 200)
	})

	t.Run("settings", func(t *testing.T) {
		require.Equal(t, onair.Settings{SiteName: "onair", RegistrationOpen: true},
			decodeBody[onair.Settings](t, boss.do("GET", "/api/v1/admin/settings", nil)))
		requireAPIError(t, bob.do("GET", "/api/v1/admin/settings", nil), 403, "forbidden", "")
		requireAPIError(t, bob.do("PATCH", "/api/v1/admin/settings", map[string]any{"site_name": "mine"}), 403, "forbidden", "")
		requireAPIError(t, e.anon().do("PATCH", "/api/v1/admin/settings", map[string]any{"site_name": "mine"}), 401, "unauthorized", "")

		got := decodeBody[onair.Settings](t, boss.do("PATCH", "/api/v1/admin/settings", map[string]any{"site_name": " Club TV "}))
		require.Equal(t, onair.Settings{SiteName: "Club TV", RegistrationOpen: true}, got)
		got = decodeBody[onair.Settings](t, boss.do("PATCH", "/api/v1/admin/settings", map[string]any{"registration_open": false}))
		require.Equal(t, onair.Settings{SiteName: "Club TV", RegistrationOpen: false}, got)
		require.Contains(t, e.anon().do("GET", "/", nil).Body.String(), "<title>Live now · Club TV</title>")

		requireAPIError(t, boss.do("PATCH", "/api/v1/admin/settings", map[string]any{"site_name": ""}), 400, "invalid",
			"Site name must be 1 to 60 characters.")
		requireAPIError(t, boss.do("PATCH", "/api/v1/admin/settings", map[string]any{"site_name": strings.Repeat("x", 61)}), 400,
			"invalid", "Site name must be 1 to 60 characters.")
		requireAPIError(t, boss.do("PATCH", "/api/v1/admin/settings", map[string]any{"theme": "dark"}), 400, "invalid",
			`Unknown field "theme".`)
		st, err := e.settings.Settings(ctx)
		require.NoError(t, err)
		require.Equal(t, "Club TV", st.SiteName)
	})
}

func TestAPIStrictJSON(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	c := e.as(e.user("alice"))
	cases := []struct {
		name  string
		body  string
		ctype string
		msg   string
	}{
		{"unknown field", `{"title":"x","bogus":1}`, "", `Unknown field "bogus".`},
		{"syntax", `{"title":`, "", "Request body is not valid JSON."},
		{"bad syntax", `{"title" "x"}`, "", "Request body is not valid JSON."},
		{"trailing value", `{"title":"x"} {"title":"y"}`, "", "Request body must be a single JSON object."},
		{"trailing garbage", `{"title":"x"} garbage`, "", "Request body must be a single JSON object."},
		{"array", `["title"]`, "", "Request body must be a JSON object."},
		{"string", `"title"`, "", "Request body must be a JSON object."},
		{"wrong type", `{"title":5}`, "", `Field "title" must be a string.`},
		{"form", `title=x`, "application/x-www-form-urlencoded", "Request body must be JSON (Content-Type: application/json)."},
		{"text", `{"title":"x"}`, "text/plain", "Request body must be JSON (Content-Type: application/json)."},
		{"empty", ``, "", "Request body must be a JSON object."},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			if ca.ctype != "" {
				c.header.Set("Content-Type", ca.ctype)
				defer c.header.Del("Content-Type")
			}
			requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", ca.body), 400, "invalid", ca.msg)
		})
	}
	t.Run("too large", func(t *testing.T) {
		body := `{"description":"` + strings.Repeat("x", 64<<10) + `"}`
		requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", body), 413, "too_large", "Request body is too large (the limit is 64 KiB).")
		// However large: the server stops reading at the limit.
		requireAPIError(t, c.do("PATCH", "/api/v1/me/channel", strings.Repeat(" ", 8<<20)), 413, "too_large", "")
	})
	t.Run("charset is fine", func(t *testing.T) {
		c.header.Set("Content-Type", "application/json; charset=utf-8")
		defer c.header.Del("Content-Type")
		requireStatus(t, c.do("PATCH", "/api/v1/me/channel", `{"title":"x"}`), 200)
	})
	t.Run("just under the limit", func(t *testing.T) {
		body := `{"description":"` + strings.Repeat("x", 4000) + `","title":"` + strings.Repeat(" ", 60<<10) + `y"}`
		require.Less(t, len(body), 64<<10)
		requireStatus(t, c.do("PATCH", "/api/v1/me/channel", body), 200)
	})
}

// FuzzDecodeJSON checks that no request body makes the strict decoder panic, and that
// every refusal is a 400 (or 413) with a message.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"title":"x"}`, `{"tags":["a","b"],"recording":true}`, `{"title":5}`, `{"x":1}`,
		`{"title":"x"} {}`, `[]`, `null`, ``, `{"tags":null}`, `{"description":"\u0000"}`, `{"title":"` + "\xff" + `"}`,
		`{"tags":[1]}`, `{"recording":"yes"}`, `{{`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("PATCH", "/api/v1/me/channel", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var v channelUpdateRequest
		err := decodeJSON(httptest.NewRecorder(), req, &v, false)
		if err != nil {
			if code := onair.ErrorCode(err); code != onair.EINVALID && code != codeTooLarge || onair.ErrorMessage(err) == "" {
				t.Fatalf("%q: %v", body, err)
			}
		}
	})
}
