package app

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// TestRecordingAPIAuthorization covers the state-changing routes the app mounts beside the
// web site (the replay API of internal/vod), as web.TestAuthorizationWalk does for the
// site's: anonymous, another user, a banned user and a cross-site call are refused and
// change nothing; the owner's call goes through.
func TestRecordingAPIAuthorization(t *testing.T) {
	ts := mustStartServer(t, nil)
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol"} {
		mustCreateUser(t, ts, name)
	}
	rec := &onair.Recording{Channel: "alice", Title: "first", StartedAt: time.Now().Add(-time.Hour)}
	require.NoError(t, ts.recordings.CreateRecording(ctx, rec))
	require.NoError(t, ts.recordings.FinishRecording(ctx, rec.ID, onair.RecordingProgress{}, time.Now()))
	path := "/api/v1/recordings/" + strconv.FormatInt(rec.ID, 10)

	carol, err := ts.users.FindUserByUsername(ctx, "carol")
	require.NoError(t, err)
	carolToken, err := ts.sessions.CreateAPIToken(ctx, carol.ID, "cli")
	require.NoError(t, err)
	admin := &onair.User{ID: -1, IsAdmin: true}
	require.NoError(t, ts.users.SetUserBanned(ctx, admin, carol.ID, true))
	alice, bob := mustLogin(t, ts, "alice"), mustLogin(t, ts, "bob")

	send := func(method, body string, prep func(*http.Request)) int {
		req, err := http.NewRequest(method, ts.httpURL(path), bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if prep != nil {
			prep(req)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	as := func(c *apiClient, csrf bool) func(*http.Request) {
		return func(req *http.Request) {
			for _, ck := range c.http.Jar.Cookies(req.URL) {
				req.AddCookie(ck)
			}
			if csrf {
				req.Header.Set("X-CSRF-Token", c.csrf)
			}
		}
	}
	callers := []struct {
		name   string
		prep   func(*http.Request)
		status int
	}{
		{"anonymous", nil, http.StatusUnauthorized},
		{"another user", as(bob, true), http.StatusForbidden},
		{"banned, API token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+carolToken.Reveal()) }, http.StatusUnauthorized},
		{"the owner without CSRF token", as(alice, false), http.StatusForbidden},
		{"the owner from a foreign origin", func(r *http.Request) { as(alice, true)(r); r.Header.Set("Origin", "https://evil.example") },
			http.StatusForbidden},
	}
	for _, call := range []struct{ method, body string }{{"PATCH", `{"title":"pwned"}`}, {"DELETE", ``}} {
		for _, c := range callers {
			require.Equal(t, c.status, send(call.method, call.body, c.prep), "%s %s", call.method, c.name)
			got, err := ts.recordings.FindRecording(ctx, rec.ID)
			require.NoError(t, err, "%s %s deleted it", call.method, c.name)
			require.Equal(t, "first", got.Title, "%s %s renamed it", call.method, c.name)
		}
	}
	require.Equal(t, http.StatusOK, send("PATCH", `{"title":"renamed"}`, as(alice, true)))
	got, err := ts.recordings.FindRecording(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Title)
	require.Equal(t, http.StatusNoContent, send("DELETE", ``, as(alice, true)))
	_, err = ts.recordings.FindRecording(ctx, rec.ID)
	require.Equal(t, onair.ENOTFOUND, onair.ErrorCode(err))
}
