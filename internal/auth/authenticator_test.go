package auth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newDebugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type fixture struct {
	clock *clock
	store *fakeStore
	auth  *auth.Authenticator
	alice *onair.User
	logs  *lockedBuffer
	// handler is Middleware around an echo handler.
	handler http.Handler
}

// seen is what the handler behind Middleware saw.
type seen struct {
	User    string `json:"user"`
	Session bool   `json:"session"`
	Body    string `json:"body"`
	Form    string `json:"form"`
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), logs: &lockedBuffer{}}
	f.store = newFakeStore(f.clock.Now)
	f.alice = f.store.addUser(&onair.User{ID: 1, Username: "alice"})
	f.store.addUser(&onair.User{ID: 2, Username: "bob"})
	f.auth = &auth.Authenticator{
		Sessions: f.store,
		Accounts: f.store,
		Logger:   newDebugLogger(f.logs),
		Now:      f.clock.Now,
	}
	f.handler = f.auth.Middleware(http.HandlerFunc(echo))
	return f
}

// echo reports the identity in the request context, the body, and the parsed form.
func echo(w http.ResponseWriter, r *http.Request) {
	var s seen
	if u := auth.UserFromContext(r.Context()); u != nil {
		s.User = u.Username
	}
	s.Session = auth.SessionFromContext(r.Context()) != nil
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.Body = string(body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") || strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.Form = r.PostForm.Encode()
		if r.MultipartForm != nil {
			s.Form = url.Values(r.MultipartForm.Value).Encode()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// login starts a session for the user and returns it with its cookie.
func (f *fixture) login(t *testing.T, userID int64) (*onair.Session, *http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	sess, err := f.auth.StartSession(w, httptest.NewRequest("POST", "/api/v1/login", nil), userID)
	require.NoError(t, err)
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	return sess, cookies[0]
}

func (f *fixture) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

func decodeSeen(t *testing.T, w *httptest.ResponseRecorder) seen {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var s seen
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
	return s
}

// requireError checks a JSON API error response.
func requireError(t *testing.T, w *httptest.ResponseRecorder, status int, code, message string) {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	require.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Equal(t, code, body.Error.Code)
	require.Equal(t, message, body.Error.Message)
}

// clearedCookie returns the Set-Cookie of w that clears the session cookie, or nil.
func clearedCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == auth.DefaultCookieName && c.MaxAge < 0 {
			return c
		}
	}
	return nil
}

func TestStartSessionCookie(t *testing.T) {
	cases := []struct {
		name   string
		tls    bool
		secure func(*http.Request) bool
		want   bool
	}{
		{name: "plain", want: false},
		{name: "tls", tls: true, want: true},
		{name: "secure func", secure: func(*http.Request) bool { return true }, want: true},
		{name: "secure func off behind tls", tls: true, secure: func(*http.Request) bool { return false }, want: false},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			f := newFixture(t)
			f.auth.Secure = ca.secure
			r := httptest.NewRequest("POST", "/api/v1/login", nil)
			if ca.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			sess, err := f.auth.StartSession(w, r, f.alice.ID)
			require.NoError(t, err)
			require.Equal(t, "alice", sess.User.Username)
			require.NotEmpty(t, sess.CSRFToken)

			header := w.Header().Get("Set-Cookie")
			require.Contains(t, header, "HttpOnly")
			require.Contains(t, header, "SameSite=Lax")
			require.Contains(t, header, "Path=/")
			require.Contains(t, header, "Max-Age="+strconv.Itoa(int((30*24*time.Hour)/time.Second)))
			require.Equal(t, ca.want, strings.Contains(header, "Secure"), header)

			c := w.Result().Cookies()[0]
			require.Equal(t, "onair_session", c.Name)
			require.Equal(t, sess.Token.Reveal(), c.Value)
			require.True(t, c.HttpOnly)
			require.Equal(t, http.SameSiteLaxMode, c.SameSite)
			require.Equal(t, ca.want, c.Secure)
		})
	}
}

func TestStartSessionCookieName(t *testing.T) {
	f := newFixture(t)
	f.auth.CookieName = "sid"
	f.handler = f.auth.Middleware(http.HandlerFunc(echo))
	_, c := f.login(t, f.alice.ID)
	require.Equal(t, "sid", c.Name)

	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	require.Equal(t, "alice", decodeSeen(t, f.do(r)).User)
}

func TestStartSessionReplacesPrevious(t *testing.T) {
	f := newFixture(t)
	_, old := f.login(t, f.alice.ID)
	require.Equal(t, 1, f.store.sessionCount())

	r := httptest.NewRequest("POST", "/api/v1/login", nil)
	r.AddCookie(old)
	w := httptest.NewRecorder()
	sess, err := f.auth.StartSession(w, r, f.store.users[2].ID)
	require.NoError(t, err)
	require.Equal(t, "bob", sess.User.Username)
	require.Equal(t, 1, f.store.sessionCount())

	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(old)
	require.Empty(t, decodeSeen(t, f.do(r)).User)
}

func TestStartSessionRefused(t *testing.T) {
	f := newFixture(t)
	f.store.setBanned(f.alice.ID, true)
	w := httptest.NewRecorder()
	_, err := f.auth.StartSession(w, httptest.NewRequest("POST", "/", nil), f.alice.ID)
	require.Equal(t, onair.EFORBIDDEN, onair.ErrorCode(err))
	require.Empty(t, w.Result().Cookies())
	require.Zero(t, f.store.sessionCount())

	_, err = f.auth.StartSession(w, httptest.NewRequest("POST", "/", nil), 99)
	require.Equal(t, onair.ENOTFOUND, onair.ErrorCode(err))
	require.Empty(t, w.Result().Cookies())
}

func TestMiddlewareIdentity(t *testing.T) {
	f := newFixture(t)
	sess, cookie := f.login(t, f.alice.ID)
	apiToken, err := f.store.CreateAPIToken(t.Context(), f.alice.ID, "cli")
	require.NoError(t, err)

	cases := []struct {
		name        string
		cookie      *http.Cookie
		bearer      string
		header      string // raw Authorization header, when set
		wantUser    string
		wantSession bool
		wantCleared bool
	}{
		{name: "anonymous"},
		{name: "session", cookie: cookie, wantUser: "alice", wantSession: true},
		{name: "unknown cookie", cookie: &http.Cookie{Name: "onair_session", Value: "nope"}, wantCleared: true},
		{name: "overlong cookie", cookie: &http.Cookie{Name: "onair_session", Value: strings.Repeat("a", 600)}, wantCleared: true},
		{name: "empty cookie", cookie: &http.Cookie{Name: "onair_session", Value: ""}},
		{name: "other cookie", cookie: &http.Cookie{Name: "theme", Value: "dark"}},
		{name: "bearer", bearer: apiToken.Reveal(), wantUser: "alice"},
		{name: "bearer lowercase scheme", header: "bearer " + apiToken.Reveal(), wantUser: "alice"},
		{name: "bearer wins over cookie", cookie: cookie, bearer: apiToken.Reveal(), wantUser: "alice"},
		{name: "basic auth ignored", header: "Basic YWxpY2U6cHc="},
		{name: "basic auth ignored with cookie", cookie: cookie, header: "Basic YWxpY2U6cHc=", wantUser: "alice", wantSession: true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/me", nil)
			if ca.cookie != nil {
				r.AddCookie(ca.cookie)
			}
			if ca.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+ca.bearer)
			}
			if ca.header != "" {
				r.Header.Set("Authorization", ca.header)
			}
			w := f.do(r)
			s := decodeSeen(t, w)
			require.Equal(t, ca.wantUser, s.User)
			require.Equal(t, ca.wantSession, s.Session)
			c := clearedCookie(w)
			require.Equal(t, ca.wantCleared, c != nil)
			if c != nil {
				require.Equal(t, "/", c.Path)
				require.True(t, c.HttpOnly)
				require.Contains(t, w.Header().Get("Set-Cookie"), "Max-Age=0")
			}
		})
	}
	require.NotNil(t, sess)
}

func TestMiddlewareExpiredSession(t *testing.T) {
	f := newFixture(t)
	_, cookie := f.login(t, f.alice.ID)

	f.clock.Add(30*24*time.Hour - time.Second)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	require.Equal(t, "alice", decodeSeen(t, f.do(r)).User)

	f.clock.Add(time.Second)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w := f.do(r)
	require.Empty(t, decodeSeen(t, w).User)
	require.NotNil(t, clearedCookie(w))
}

// staleSessions is a store that hands out a session whatever its expiry.
type staleSessions struct {
	*fakeStore
	sess *onair.Session
}

func (s staleSessions) FindSession(context.Context, onair.Secret) (*onair.Session, error) {
	return s.sess, nil
}

func TestMiddlewareStaleSessionFromStore(t *testing.T) {
	f := newFixture(t)
	stale := &onair.Session{
		Token: "t", CSRFToken: "c", User: f.alice,
		ExpiresAt: f.clock.Now().Add(-time.Second),
	}
	a := &auth.Authenticator{Sessions: staleSessions{fakeStore: f.store, sess: stale}, Now: f.clock.Now}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: "t"})
	w := httptest.NewRecorder()
	a.Middleware(http.HandlerFunc(echo)).ServeHTTP(w, r)
	require.Empty(t, decodeSeen(t, w).User)
	require.NotNil(t, clearedCookie(w))
}

func TestMiddlewareBannedUser(t *testing.T) {
	f := newFixture(t)
	_, cookie := f.login(t, f.alice.ID)
	apiToken, err := f.store.CreateAPIToken(t.Context(), f.alice.ID, "cli")
	require.NoError(t, err)
	f.store.setBanned(f.alice.ID, true)

	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w := f.do(r)
	s := decodeSeen(t, w)
	require.Empty(t, s.User)
	require.False(t, s.Session)
	require.NotNil(t, clearedCookie(w))

	// Anonymous: a state-changing request needs no CSRF token, and handlers refuse it.
	r = httptest.NewRequest("POST", "/api/v1/me/channel", nil)
	r.AddCookie(cookie)
	require.Empty(t, decodeSeen(t, f.do(r)).User)

	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+apiToken.Reveal())
	require.Empty(t, decodeSeen(t, f.do(r)).User)
}

func TestMiddlewareBadBearer(t *testing.T) {
	f := newFixture(t)
	_, cookie := f.login(t, f.alice.ID)
	for _, header := range []string{"Bearer nope", "Bearer ", "Bearer", "Bearer " + strings.Repeat("x", 600)} {
		t.Run(header[:min(len(header), 12)], func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/me", nil)
			r.Header.Set("Authorization", header)
			r.AddCookie(cookie) // a valid cookie does not rescue a bad explicit token
			w := f.do(r)
			requireError(t, w, http.StatusUnauthorized, "unauthorized", "Invalid API token.")
			require.Equal(t, `Bearer error="invalid_token"`, w.Header().Get("WWW-Authenticate"))
		})
	}
}

func TestMiddlewareStoreFailure(t *testing.T) {
	f := newFixture(t)
	_, cookie := f.login(t, f.alice.ID)
	f.store.Err = errors.New("disk on fire")

	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w := f.do(r)
	requireError(t, w, http.StatusInternalServerError, "internal", "Internal error.")
	require.Nil(t, clearedCookie(w), "a store failure must not log the user out")

	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer abc")
	requireError(t, f.do(r), http.StatusInternalServerError, "internal", "Internal error.")
	require.Contains(t, f.logs.String(), "disk on fire")
}

func TestMiddlewareCSRF(t *testing.T) {
	f := newFixture(t)
	sess, cookie := f.login(t, f.alice.ID)
	apiToken, err := f.store.CreateAPIToken(t.Context(), f.alice.ID, "cli")
	require.NoError(t, err)

	form := url.Values{"title": {"hi"}, "csrf_token": {sess.CSRFToken}}.Encode()
	badForm := url.Values{"title": {"hi"}, "csrf_token": {"wrong"}}.Encode()
	bigForm := "pad=" + strings.Repeat("a", auth.MaxFormPeek) + "&csrf_token=" + sess.CSRFToken
	multipartBody, multipartType := multipartForm(t, map[string]string{"csrf_token": sess.CSRFToken, "title": "hi"})
	badMultipartBody, _ := multipartForm(t, map[string]string{"csrf_token": "wrong", "title": "hi"})

	const (
		asAnon   = 0      // no credentials
		asCookie = 1 << 0 // the session cookie
		asBearer = 1 << 1 // an API token
	)
	cases := []struct {
		name    string
		method  string
		as      int
		headers map[string]string
		ctype   string
		body    string
		// want is the status; on 403 the message.
		want    int
		message string
		// wantForm is the form the handler parses, when checked.
		wantForm string
	}{
		{name: "get needs no token", method: "GET", as: asCookie, want: 200},
		{name: "head needs no token", method: "HEAD", as: asCookie, want: 200},
		{name: "options needs no token", method: "OPTIONS", as: asCookie, want: 200},
		{name: "get cross-origin", method: "GET", as: asCookie, headers: map[string]string{"Origin": "https://evil.example"}, want: 200},
		{name: "post missing", method: "POST", as: asCookie, want: 403, message: "Missing or bad CSRF token."},
		{name: "post wrong header", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": "wrong"}, want: 403, message: "Missing or bad CSRF token."},
		{name: "post right header", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken}, want: 200},
		{name: "put right header", method: "PUT", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken}, want: 200},
		{name: "patch right header", method: "PATCH", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken}, want: 200},
		{name: "delete right header", method: "DELETE", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken}, want: 200},
		{name: "put missing", method: "PUT", as: asCookie, want: 403, message: "Missing or bad CSRF token."},
		{name: "patch missing", method: "PATCH", as: asCookie, want: 403, message: "Missing or bad CSRF token."},
		{name: "delete missing", method: "DELETE", as: asCookie, want: 403, message: "Missing or bad CSRF token."},
		{name: "post token prefix", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken[:10]}, want: 403, message: "Missing or bad CSRF token."},
		{name: "form without token", method: "POST", as: asCookie, ctype: "application/x-www-form-urlencoded", body: "title=hi", want: 403, message: "Missing or bad CSRF token."},
		{name: "form right", method: "POST", as: asCookie, ctype: "application/x-www-form-urlencoded", body: form, want: 200, wantForm: form},
		{name: "form right with charset", method: "POST", as: asCookie, ctype: "application/x-www-form-urlencoded; charset=utf-8", body: form, want: 200, wantForm: form},
		{name: "form wrong", method: "POST", as: asCookie, ctype: "application/x-www-form-urlencoded", body: badForm, want: 403, message: "Missing or bad CSRF token."},
		{name: "form token past 1 MiB", method: "POST", as: asCookie, ctype: "application/x-www-form-urlencoded", body: bigForm, want: 403, message: "Missing or bad CSRF token."},
		{name: "form token in json body is not read", method: "POST", as: asCookie, ctype: "application/json", body: `{"csrf_token":"` + sess.CSRFToken + `"}`, want: 403, message: "Missing or bad CSRF token."},
		{name: "multipart right", method: "POST", as: asCookie, ctype: multipartType, body: multipartBody, want: 200, wantForm: "csrf_token=" + sess.CSRFToken + "&title=hi"},
		{name: "multipart wrong", method: "POST", as: asCookie, ctype: multipartType, body: badMultipartBody, want: 403, message: "Missing or bad CSRF token."},
		{name: "header wins over form", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": "wrong"}, ctype: "application/x-www-form-urlencoded", body: form, want: 403, message: "Missing or bad CSRF token."},
		{name: "same origin", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "http://onair.test"}, want: 200},
		{name: "same origin default port", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "https://ONAIR.test:443"}, want: 200},
		{name: "cross origin", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "https://evil.example"}, want: 403, message: "Cross-origin request refused."},
		{name: "cross origin other port", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "http://onair.test:8080"}, want: 403, message: "Cross-origin request refused."},
		{name: "null origin", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "null"}, want: 403, message: "Cross-origin request refused."},
		{name: "cross-origin referer", method: "DELETE", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Referer": "https://evil.example/page"}, want: 403, message: "Cross-origin request refused."},
		{name: "same-origin referer", method: "DELETE", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Referer": "http://onair.test/@alice"}, want: 200},
		{name: "origin wins over referer", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Origin": "http://onair.test", "Referer": "https://evil.example/"}, want: 200},
		{name: "sec-fetch-site cross-site", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Sec-Fetch-Site": "cross-site"}, want: 403, message: "Cross-origin request refused."},
		{name: "sec-fetch-site same-site", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Sec-Fetch-Site": "same-site"}, want: 403, message: "Cross-origin request refused."},
		{name: "sec-fetch-site same-origin", method: "POST", as: asCookie, headers: map[string]string{"X-CSRF-Token": sess.CSRFToken, "Sec-Fetch-Site": "same-origin"}, want: 200},
		{name: "sec-fetch-site same-origin still needs token", method: "POST", as: asCookie, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}, want: 403, message: "Missing or bad CSRF token."},
		{name: "anonymous post passes", method: "POST", as: asAnon, ctype: "application/x-www-form-urlencoded", body: "username=a", want: 200, wantForm: "username=a"},
		{name: "anonymous cross-origin post refused", method: "POST", as: asAnon, headers: map[string]string{"Origin": "https://evil.example"}, want: 403, message: "Cross-origin request refused."},
		{name: "bearer post needs no token", method: "POST", as: asBearer, want: 200},
		{name: "bearer with cookie needs no token", method: "DELETE", as: asBearer | asCookie, want: 200},
		{name: "bearer ignores origin", method: "POST", as: asBearer, headers: map[string]string{"Origin": "https://tool.example"}, want: 200},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			r := httptest.NewRequest(ca.method, "http://onair.test/api/v1/x", strings.NewReader(ca.body))
			if ca.ctype != "" {
				r.Header.Set("Content-Type", ca.ctype)
			}
			if ca.as&asCookie != 0 {
				r.AddCookie(cookie)
			}
			if ca.as&asBearer != 0 {
				r.Header.Set("Authorization", "Bearer "+apiToken.Reveal())
			}
			for k, v := range ca.headers {
				r.Header.Set(k, v)
			}
			w := f.do(r)
			if ca.want != http.StatusOK {
				requireError(t, w, ca.want, "forbidden", ca.message)
				return
			}
			s := decodeSeen(t, w)
			if ca.as == asAnon {
				require.Empty(t, s.User)
			} else {
				require.Equal(t, "alice", s.User)
				require.Equal(t, ca.as == asCookie, s.Session)
			}
			require.Equal(t, ca.body, s.Body, "the handler reads the whole body")
			if ca.wantForm != "" {
				want, err := url.ParseQuery(ca.wantForm)
				require.NoError(t, err)
				got, err := url.ParseQuery(s.Form)
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		})
	}
}

func multipartForm(t *testing.T, fields map[string]string) (body, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range []string{"csrf_token", "title"} {
		require.NoError(t, mw.WriteField(k, fields[k]))
	}
	require.NoError(t, mw.Close())
	return buf.String(), mw.FormDataContentType()
}

func TestEndSession(t *testing.T) {
	f := newFixture(t)
	sess, cookie := f.login(t, f.alice.ID)

	// Logout behind the middleware, the way the web layer does it.
	var endErr error
	logout := f.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endErr = f.auth.EndSession(w, r)
	}))
	r := httptest.NewRequest("POST", "/api/v1/logout", nil)
	r.AddCookie(cookie)
	r.Header.Set("X-CSRF-Token", sess.CSRFToken)
	w := httptest.NewRecorder()
	logout.ServeHTTP(w, r)
	require.NoError(t, endErr)
	c := clearedCookie(w)
	require.NotNil(t, c)
	require.Equal(t, "/", c.Path)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Zero(t, f.store.sessionCount())

	_, err := f.store.FindSession(t.Context(), sess.Token)
	require.Equal(t, onair.EUNAUTHORIZED, onair.ErrorCode(err))

	// The old cookie no longer works.
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	require.Empty(t, decodeSeen(t, f.do(r)).User)

	// Without a session, EndSession only clears the cookie.
	w = httptest.NewRecorder()
	require.NoError(t, f.auth.EndSession(w, httptest.NewRequest("POST", "/api/v1/logout", nil)))
	require.NotNil(t, clearedCookie(w))

	// Straight from the cookie, without the middleware.
	_, cookie = f.login(t, f.alice.ID)
	r = httptest.NewRequest("POST", "/api/v1/logout", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	require.NoError(t, f.auth.EndSession(w, r))
	require.NotNil(t, clearedCookie(w))
	require.Zero(t, f.store.sessionCount())

	// A store failure is reported, and the cookie is cleared all the same.
	_, cookie = f.login(t, f.alice.ID)
	f.store.Err = errors.New("disk on fire")
	r = httptest.NewRequest("POST", "/api/v1/logout", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	require.EqualError(t, f.auth.EndSession(w, r), "end session: disk on fire")
	require.NotNil(t, clearedCookie(w))
}

func TestNoTokenInLogs(t *testing.T) {
	f := newFixture(t)
	sess, cookie := f.login(t, f.alice.ID)
	apiToken, err := f.store.CreateAPIToken(t.Context(), f.alice.ID, "cli")
	require.NoError(t, err)

	requests := []*http.Request{
		httptest.NewRequest("GET", "/", nil),
		httptest.NewRequest("POST", "/", nil),
		httptest.NewRequest("POST", "/", nil),
		httptest.NewRequest("GET", "/", nil),
		httptest.NewRequest("GET", "/", nil),
	}
	requests[0].AddCookie(cookie)
	requests[1].AddCookie(cookie)
	requests[1].Header.Set("X-CSRF-Token", sess.CSRFToken[:20])
	requests[2].AddCookie(cookie)
	requests[2].Header.Set("X-CSRF-Token", sess.CSRFToken)
	requests[3].Header.Set("Authorization", "Bearer "+apiToken.Reveal())
	requests[4].Header.Set("Authorization", "Bearer "+apiToken.Reveal()+"x")
	for _, r := range requests {
		f.do(r)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", nil)
	r.AddCookie(cookie)
	require.NoError(t, f.auth.EndSession(w, r))

	logs := f.logs.String()
	require.Contains(t, logs, "user_id=1")
	require.Contains(t, logs, "request authenticated")
	require.Contains(t, logs, "csrf token refused")
	require.Contains(t, logs, "api token refused")
	for _, secret := range []string{sess.Token.Reveal(), sess.CSRFToken, sess.CSRFToken[:20], apiToken.Reveal()} {
		require.NotContains(t, logs, secret)
	}
}

func TestNewContext(t *testing.T) {
	ctx := t.Context()
	require.Nil(t, auth.UserFromContext(ctx))
	require.Nil(t, auth.SessionFromContext(ctx))
	u := &onair.User{ID: 7, Username: "carol"}
	s := &onair.Session{User: u}
	ctx = auth.NewContext(ctx, u, s)
	require.Same(t, u, auth.UserFromContext(ctx))
	require.Same(t, s, auth.SessionFromContext(ctx))
}

// spacedTokens is a store whose session tokens cannot be cookie values.
type spacedTokens struct{ *fakeStore }

func (s spacedTokens) CreateSession(ctx context.Context, userID int64) (*onair.Session, error) {
	sess, err := s.fakeStore.CreateSession(ctx, userID)
	if err != nil {
		return nil, err
	}
	sess.Token = "two words"
	return sess, nil
}

func TestStartSessionBadToken(t *testing.T) {
	f := newFixture(t)
	a := &auth.Authenticator{Sessions: spacedTokens{f.store}}
	w := httptest.NewRecorder()
	_, err := a.StartSession(w, httptest.NewRequest("POST", "/", nil), f.alice.ID)
	require.EqualError(t, err, "start session: session token is not a valid cookie value")
	require.Empty(t, w.Result().Cookies())
}

func TestMiddlewareSessionWithoutCSRFToken(t *testing.T) {
	f := newFixture(t)
	sess := &onair.Session{Token: "t", User: f.alice, ExpiresAt: f.clock.Now().Add(time.Hour)}
	a := &auth.Authenticator{Sessions: staleSessions{fakeStore: f.store, sess: sess}, Now: f.clock.Now}
	for _, token := range []string{"", "x"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: "t"})
		r.Header.Set("X-CSRF-Token", token)
		w := httptest.NewRecorder()
		a.Middleware(http.HandlerFunc(echo)).ServeHTTP(w, r)
		requireError(t, w, http.StatusForbidden, "forbidden", "Missing or bad CSRF token.")
	}
}

func TestMiddlewareOriginIPv6Host(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		host, origin string
		want         int
	}{
		{"[::1]:8080", "http://[::1]:8080", http.StatusOK},
		{"[::1]:80", "http://[::1]", http.StatusOK},
		{"[::1]", "https://[::1]:443", http.StatusOK},
		{"[::1]:8080", "http://[::2]:8080", http.StatusForbidden},
		{"127.0.0.1:8080", "http://localhost:8080", http.StatusForbidden},
		{"onair.test", "ftp://onair.test", http.StatusForbidden},
	}
	for _, ca := range cases {
		t.Run(ca.host+" "+ca.origin, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.Host = ca.host
			r.Header.Set("Origin", ca.origin)
			require.Equal(t, ca.want, f.do(r).Code)
		})
	}
}
