package auth_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

// TestAuthenticatorStore runs the whole flow on the real SQLite store: login, cookie,
// CSRF, bearer token, ban, expiry and logout.
func TestAuthenticatorStore(t *testing.T) {
	c := newClock()
	db := &store.DB{
		DSN:         filepath.Join(t.TempDir(), "a.db"),
		Secret:      make([]byte, 32),
		Now:         c.Now,
		SessionLife: 2 * time.Hour,
	}
	require.NoError(t, db.Open(t.Context()))
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	users := store.NewUserService(db)
	sessions := store.NewSessionService(db)

	admin := &onair.User{Username: "root_user", Email: "root@example.com"}
	_, err := users.CreateUser(t.Context(), admin, "correct horse")
	require.NoError(t, err)
	alice := &onair.User{Username: "alice", Email: "alice@example.com"}
	_, err = users.CreateUser(t.Context(), alice, "battery staple")
	require.NoError(t, err)
	apiToken, err := sessions.CreateAPIToken(t.Context(), alice.ID, "cli")
	require.NoError(t, err)

	logs := &lockedBuffer{}
	a := &auth.Authenticator{Sessions: sessions, Accounts: users, Now: c.Now, Logger: newDebugLogger(logs)}
	h := a.Middleware(http.HandlerFunc(echo))
	do := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	// Login.
	w := httptest.NewRecorder()
	sess, err := a.StartSession(w, httptest.NewRequest("POST", "/api/v1/login", nil), alice.ID)
	require.NoError(t, err)
	cookie := w.Result().Cookies()[0]
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
	require.Contains(t, w.Header().Get("Set-Cookie"), "Max-Age="+strconv.Itoa(7200))

	// The cookie identifies alice.
	r := httptest.NewRequest("GET", "/api/v1/me", nil)
	r.AddCookie(cookie)
	s := decodeSeen(t, do(r))
	require.Equal(t, "alice", s.User)
	require.True(t, s.Session)

	// CSRF.
	r = httptest.NewRequest("PATCH", "/api/v1/me/channel", nil)
	r.AddCookie(cookie)
	requireError(t, do(r), http.StatusForbidden, "forbidden", "Missing or bad CSRF token.")
	r = httptest.NewRequest("PATCH", "/api/v1/me/channel", nil)
	r.AddCookie(cookie)
	r.Header.Set("X-CSRF-Token", sess.CSRFToken)
	require.Equal(t, "alice", decodeSeen(t, do(r)).User)

	// Bearer.
	r = httptest.NewRequest("POST", "/api/v1/tokens", nil)
	r.Header.Set("Authorization", "Bearer "+apiToken.Reveal())
	s = decodeSeen(t, do(r))
	require.Equal(t, "alice", s.User)
	require.False(t, s.Session)
	r = httptest.NewRequest("GET", "/api/v1/me", nil)
	r.Header.Set("Authorization", "Bearer "+apiToken.Reveal()[1:]+"A")
	requireError(t, do(r), http.StatusUnauthorized, "unauthorized", "Invalid API token.")

	// A ban makes both anonymous, and no new session starts.
	require.NoError(t, users.SetUserBanned(t.Context(), admin, alice.ID, true))
	r = httptest.NewRequest("GET", "/api/v1/me", nil)
	r.AddCookie(cookie)
	w = do(r)
	require.Empty(t, decodeSeen(t, w).User)
	require.NotNil(t, clearedCookie(w))
	r = httptest.NewRequest("GET", "/api/v1/me", nil)
	r.Header.Set("Authorization", "Bearer "+apiToken.Reveal())
	require.Empty(t, decodeSeen(t, do(r)).User)
	_, err = a.StartSession(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), alice.ID)
	require.Equal(t, onair.EFORBIDDEN, onair.ErrorCode(err))
	require.NoError(t, users.SetUserBanned(t.Context(), admin, alice.ID, false))

	// Expiry.
	w = httptest.NewRecorder()
	_, err = a.StartSession(w, httptest.NewRequest("POST", "/", nil), alice.ID)
	require.NoError(t, err)
	cookie = w.Result().Cookies()[0]
	c.Add(2 * time.Hour)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w = do(r)
	require.Empty(t, decodeSeen(t, w).User)
	require.NotNil(t, clearedCookie(w))

	// Logout.
	w = httptest.NewRecorder()
	_, err = a.StartSession(w, httptest.NewRequest("POST", "/", nil), alice.ID)
	require.NoError(t, err)
	cookie = w.Result().Cookies()[0]
	r = httptest.NewRequest("POST", "/api/v1/logout", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	require.NoError(t, a.EndSession(w, r))
	require.NotNil(t, clearedCookie(w))
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	require.Empty(t, decodeSeen(t, do(r)).User)

	require.NotContains(t, logs.String(), apiToken.Reveal())
	require.NotContains(t, logs.String(), cookie.Value)
	require.NotContains(t, logs.String(), sess.CSRFToken)
}
