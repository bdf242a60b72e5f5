package web

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// authzWorld is a seeded site for the authorisation walk: alice and bob have channels,
// bob commented on alice's live video, alice follows carol and has an unread
// notification, mallory is banned (with an API token and a session from before the ban),
// dave is banned too (for unban).
type authzWorld struct {
	e                    *env
	u                    map[string]*onair.User
	video, comment       int64
	malloryAPI, mallorys *client
}

func mustAuthzWorld(t *testing.T) *authzWorld {
	t.Helper()
	e, u := seeded(t)
	ctx := context.Background()
	w := &authzWorld{e: e, u: u}
	for _, name := range []string{"mallory", "dave"} {
		u[name] = e.user(name)
	}
	u["boss"] = e.mustFind("boss")
	v, err := e.comments.ChannelVideo(ctx, "alice")
	require.NoError(t, err)
	w.video = v.ID
	c, err := e.comments.CreateComment(ctx, u["bob"], v.ID, "nice stream")
	require.NoError(t, err)
	w.comment = c.ID
	require.NoError(t, e.channels.Follow(ctx, u["alice"], "carol"))
	require.NoError(t, e.notes.Notify(ctx, []int64{u["alice"].ID}, onair.Notification{Kind: "live", Channel: "carol", Text: "@carol is live"}))
	w.malloryAPI = e.bearerFor(u["mallory"])
	w.mallorys = e.as(u["mallory"])
	for _, name := range []string{"mallory", "dave"} {
		require.NoError(t, e.users.SetUserBanned(ctx, u["boss"], u[name].ID, true))
	}
	return w
}

// snapshot dumps every table (without the columns that merely reading touches: the last
// use of an API token) and the streams ended, so that a refused call can be shown to
// have changed nothing.
func (w *authzWorld) snapshot(t *testing.T) string {
	t.Helper()
	db := w.e.db.SQL()
	var b strings.Builder
	for _, q := range []string{
		"SELECT * FROM users ORDER BY id", "SELECT * FROM channels ORDER BY id", "SELECT * FROM stream_keys ORDER BY id",
		"SELECT id, token_hash, user_id FROM sessions ORDER BY id", "SELECT id, token_hash, user_id, name FROM api_tokens ORDER BY id",
		"SELECT * FROM channel_tags", "SELECT * FROM follows", "SELECT * FROM chat_messages ORDER BY id",
		"SELECT * FROM chat_bans", "SELECT * FROM videos ORDER BY id", "SELECT * FROM comments ORDER BY id",
		"SELECT * FROM notifications ORDER BY id", "SELECT * FROM settings", "SELECT * FROM recordings ORDER BY id",
	} {
		b.WriteString(q + "\n")
		dumpRows(t, db, q, &b)
	}
	fmt.Fprintf(&b, "ended %v\n", w.e.endedStreams())
	return b.String()
}

func dumpRows(t *testing.T, db *sql.DB, q string, b *strings.Builder) {
	t.Helper()
	rows, err := db.Query(q)
	require.NoError(t, err, q)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		require.NoError(t, rows.Scan(ptrs...))
		fmt.Fprintf(b, "%v\n", vals)
	}
	require.NoError(t, rows.Err())
}

// authzCase is one state-changing route. who may call it: "public" (anyone), "self"
// (any signed-in user, on their own account: alice does it), "author" (the comment's
// author, bob), "admin" (boss). The rightful caller's call must succeed and change the
// state, so that every refusal below is shown to matter.
type authzCase struct {
	route  string // as registered in routes()
	path   string
	body   func(w *authzWorld) any
	who    string
	status int // of the rightful call
}

func authzCases(w *authzWorld) []authzCase {
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	body := func(v any) func(*authzWorld) any { return func(*authzWorld) any { return v } }
	return []authzCase{
		{"POST /logout", "/logout", nil, "self", http.StatusSeeOther},
		{"POST /api/v1/register", "/api/v1/register", body(map[string]string{"username": "newbie", "password": "long enough pw"}), "public", 201},
		{"POST /api/v1/login", "/api/v1/login", body(map[string]string{"username": "alice", "password": password("alice")}), "public", 200},
		{"POST /api/v1/logout", "/api/v1/logout", nil, "self", 204},
		{"POST /api/v1/tokens", "/api/v1/tokens", body(map[string]string{"name": "ci"}), "self", 201},
		{"DELETE /api/v1/me", "/api/v1/me", body(map[string]string{"password": password("alice")}), "self", 204},
		{"POST /api/v1/me/password", "/api/v1/me/password",
			body(map[string]string{"old_password": password("alice"), "new_password": "a new password"}), "self", 204},
		{"POST /api/v1/me/stream-key", "/api/v1/me/stream-key", nil, "self", 200},
		{"PATCH /api/v1/me/channel", "/api/v1/me/channel", body(map[string]string{"title": "pwned"}), "self", 200},
		{"POST /api/v1/me/notifications/read", "/api/v1/me/notifications/read", nil, "self", 204},
		{"PUT /api/v1/channels/{username}/follow", "/api/v1/channels/bob/follow", nil, "self", 200},
		{"DELETE /api/v1/channels/{username}/follow", "/api/v1/channels/carol/follow", nil, "self", 200},
		{"POST /api/v1/videos/{id}/comments", "/api/v1/videos/" + id(w.video) + "/comments", body(map[string]string{"text": "spam"}), "self", 201},
		{"PATCH /api/v1/comments/{id}", "/api/v1/comments/" + id(w.comment), body(map[string]string{"text": "edited"}), "author", 200},
		{"DELETE /api/v1/comments/{id}", "/api/v1/comments/" + id(w.comment), nil, "author", 204},
		{"POST /api/v1/admin/users/{username}/ban", "/api/v1/admin/users/carol/ban", nil, "admin", 200},
		{"POST /api/v1/admin/users/{username}/unban", "/api/v1/admin/users/dave/unban", nil, "admin", 200},
		{"POST /api/v1/admin/streams/{username}/end", "/api/v1/admin/streams/alice/end", nil, "admin", 204},
		{"PATCH /api/v1/admin/settings", "/api/v1/admin/settings", body(map[string]any{"registration_open": false}), "admin", 200},
	}
}

// TestAuthorizationWalk calls every state-changing route of routes() as anonymous, as a
// banned user (API token, and the session cookie from before the ban), as another user
// where the route has an owner, and cross-site (no CSRF token, a foreign Origin), and
// checks that each is refused with the right status and changes nothing.
func TestAuthorizationWalk(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("server.go")
	require.NoError(t, err)
	var registered []string
	for _, m := range regexp.MustCompile(`app\.Handle(?:Func)?\("((?:POST|PUT|PATCH|DELETE) [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		registered = append(registered, m[1])
	}
	require.NotEmpty(t, registered)
	var covered []string
	for _, ca := range authzCases(&authzWorld{}) {
		covered = append(covered, ca.route)
	}
	slices.Sort(registered)
	slices.Sort(covered)
	require.Equal(t, registered, covered, "every state-changing route has a row in authzCases")

	for i, ca := range authzCases(&authzWorld{}) {
		t.Run(ca.route, func(t *testing.T) {
			w := mustAuthzWorld(t)
			ca = authzCases(w)[i]
			var body any
			if ca.body != nil {
				body = ca.body(w)
			}
			refuse := func(name string, c *client, status int) {
				t.Helper()
				before := w.snapshot(t)
				rec := c.do(method(ca.route), ca.path, body)
				require.Equal(t, status, rec.Code, "%s: %s", name, rec.Body.String())
				require.Equal(t, before, w.snapshot(t), "%s changed the state", name)
			}
			rightful := map[string]*onair.User{"self": w.u["alice"], "author": w.u["bob"], "admin": w.u["boss"]}[ca.who]
			if ca.who != "public" {
				if ca.route == "POST /logout" || ca.route == "POST /api/v1/logout" {
					refuse("anonymous", w.e.anon(), ca.status) // nothing to end
				} else {
					refuse("anonymous", w.e.anon(), http.StatusUnauthorized)
				}
				// A banned user is anonymous to the site (auth.Authenticator): their old
				// session is gone and their API token authenticates no one.
				if ca.route == "POST /logout" || ca.route == "POST /api/v1/logout" {
					refuse("banned, API token", w.malloryAPI, ca.status)
					refuse("banned, old session", w.mallorys, ca.status)
				} else {
					refuse("banned, API token", w.malloryAPI, http.StatusUnauthorized)
					refuse("banned, old session", w.mallorys, http.StatusUnauthorized)
				}
				switch ca.who {
				case "author":
					refuse("another user", w.e.as(w.u["carol"]), http.StatusForbidden)
					if method(ca.route) == "PATCH" { // the channel owner may delete, not edit
						refuse("the channel owner", w.e.as(w.u["alice"]), http.StatusForbidden)
					}
				case "admin":
					refuse("another user", w.e.as(w.u["alice"]), http.StatusForbidden)
					refuse("another user, API token", w.e.bearerFor(w.u["alice"]), http.StatusForbidden)
				}
				noCSRF := w.e.as(rightful)
				noCSRF.csrf = ""
				refuse("no CSRF token", noCSRF, http.StatusForbidden)
				foreign := w.e.as(rightful)
				foreign.header.Set("Origin", "https://evil.example")
				refuse("cross-site", foreign, http.StatusForbidden)
			}

			// The rightful call goes through and changes something.
			c := w.e.anon()
			if rightful != nil {
				c = w.e.as(rightful)
			}
			c.ip = "198.51.100.77"
			before := w.snapshot(t)
			rec := c.do(method(ca.route), ca.path, body)
			require.Equal(t, ca.status, rec.Code, rec.Body.String())
			require.NotEqual(t, before, w.snapshot(t), "the rightful call changed nothing: the refusals prove nothing")
		})
	}
}

func method(route string) string { m, _, _ := strings.Cut(route, " "); return m }
