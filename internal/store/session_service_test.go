package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

var tokenRE = `^[A-Za-z0-9_-]{43}$`

func TestSessionServiceSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")

		s1 := e.mustSession(t, alice)
		s2 := e.mustSession(t, alice)
		require.Regexp(t, tokenRE, s1.Token.Reveal())
		require.Regexp(t, tokenRE, s1.CSRFToken)
		require.NotEqual(t, s1.Token.Reveal(), s2.Token.Reveal())
		require.NotEqual(t, s1.Token.Reveal(), s1.CSRFToken)
		require.NotEqual(t, s1.CSRFToken, s2.CSRFToken)
		require.Equal(t, startTime, s1.CreatedAt)
		require.Equal(t, startTime.Add(store.DefaultSessionLife), s1.ExpiresAt)
		require.Equal(t, alice, s1.User)
		require.Equal(t, "REDACTED", s1.Token.String())

		got, err := e.sessions.FindSession(ctx, s1.Token)
		require.NoError(t, err)
		require.Equal(t, s1, got)

		// Only the SHA-256 of the token is stored.
		sum := sha256.Sum256([]byte(s1.Token.Reveal()))
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM sessions WHERE token_hash = ?`, hex.EncodeToString(sum[:])))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM sessions WHERE token_hash = ? OR csrf_token = ?`, s1.Token.Reveal(), s1.Token.Reveal()))

		// Bad tokens.
		flipped := []byte(s1.Token.Reveal())
		flipped[5] ^= 1
		for _, tok := range []string{"", "short", string(flipped), s1.CSRFToken, s1.Token.Reveal() + "A", "' OR '1'='1", strings.Repeat("A", 43)} {
			_, err := e.sessions.FindSession(ctx, onair.Secret(tok))
			requireMessage(t, err, onair.EUNAUTHORIZED, "Your session has expired. Please sign in again.")
			if len(tok) > 8 {
				require.NotContains(t, err.Error(), tok)
			}
		}

		// Logout ends one session; unknown and malformed tokens are no error.
		require.NoError(t, e.sessions.DeleteSession(ctx, s1.Token))
		_, err = e.sessions.FindSession(ctx, s1.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		require.NoError(t, e.sessions.DeleteSession(ctx, s1.Token))
		require.NoError(t, e.sessions.DeleteSession(ctx, "garbage"))
		_, err = e.sessions.FindSession(ctx, s2.Token)
		require.NoError(t, err)

		_, err = e.sessions.CreateSession(ctx, 999)
		requireMessage(t, err, onair.ENOTFOUND, "User not found.")
	})
}

func TestSessionServiceExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		old := e.mustSession(t, alice)
		e.clock.Add(store.DefaultSessionLife - time.Millisecond)
		young := e.mustSession(t, alice)

		_, err := e.sessions.FindSession(ctx, old.Token)
		require.NoError(t, err, "one millisecond left")
		e.clock.Add(time.Millisecond)
		_, err = e.sessions.FindSession(ctx, old.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		// The expired session was deleted on the way.
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM sessions`))
		_, err = e.sessions.FindSession(ctx, young.Token)
		require.NoError(t, err)

		// PruneSessions deletes expired sessions of every user; CreateSession those of its
		// user.
		bob := e.mustUser(t, "bob")
		e.mustSession(t, bob)
		e.clock.Add(store.DefaultSessionLife)
		e.mustSession(t, alice)
		require.Equal(t, 2, e.count(t, `SELECT COUNT(*) FROM sessions`))
		n, err := e.sessions.PruneSessions(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM sessions`))
	})
}

func TestSessionServiceSessionLife(t *testing.T) {
	clk := &clock{t: startTime}
	db := &store.DB{DSN: sqliteDSN(t), Secret: testSecret, Now: clk.Now, SessionLife: time.Hour}
	require.NoError(t, db.Open(t.Context()))
	defer func() { require.NoError(t, db.Close()) }()
	u, _ := MustCreateUser(t, db, "alice")
	sessions := store.NewSessionService(db)
	s, err := sessions.CreateSession(t.Context(), u.ID)
	require.NoError(t, err)
	require.Equal(t, startTime.Add(time.Hour), s.ExpiresAt)
	clk.Add(time.Hour)
	_, err = sessions.FindSession(t.Context(), s.Token)
	requireCode(t, err, onair.EUNAUTHORIZED)
}

func TestSessionServiceAPITokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")

		cases := []struct {
			name string
			user int64
			tok  string
			code string
			msg  string
		}{
			{name: "ok", user: alice.ID, tok: "  my laptop  "},
			{name: "script name", user: alice.ID, tok: "<script>alert(1)</script>"},
			{name: "empty", user: alice.ID, tok: "  ", code: onair.EINVALID, msg: "Token name must not be empty."},
			{name: "long", user: alice.ID, tok: strings.Repeat("x", 101), code: onair.EINVALID, msg: "Token name must be at most 100 characters."},
			{name: "newline", user: alice.ID, tok: "a\nb", code: onair.EINVALID, msg: "Token name must not contain control characters."},
			{name: "bad utf8", user: alice.ID, tok: "a\xffb", code: onair.EINVALID, msg: "Token name must be valid UTF-8 text."},
			{name: "unknown user", user: 999, tok: "x", code: onair.ENOTFOUND, msg: "User not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				tok, err := e.sessions.CreateAPIToken(ctx, ca.user, ca.tok)
				if ca.code != "" {
					requireMessage(t, err, ca.code, ca.msg)
					return
				}
				require.NoError(t, err)
				require.Regexp(t, tokenRE, tok.Reveal())
				u, err := e.sessions.FindUserByAPIToken(ctx, tok)
				require.NoError(t, err)
				require.Equal(t, alice, u)
				// Stored hashed, with its name trimmed.
				sum := sha256.Sum256([]byte(tok.Reveal()))
				require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM api_tokens WHERE token_hash = ? AND name = ?`,
					hex.EncodeToString(sum[:]), strings.TrimSpace(ca.tok)))
			})
		}

		bobs, err := e.sessions.CreateAPIToken(ctx, bob.ID, "bot")
		require.NoError(t, err)
		for _, tok := range []string{"", "x", strings.Repeat("A", 43), bobs.Reveal()[1:] + "A"} {
			_, err := e.sessions.FindUserByAPIToken(ctx, onair.Secret(tok))
			requireMessage(t, err, onair.EUNAUTHORIZED, "Invalid API token.")
		}
		// A session token is no API token and the other way round.
		sess := e.mustSession(t, bob)
		_, err = e.sessions.FindUserByAPIToken(ctx, sess.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		_, err = e.sessions.FindSession(ctx, bobs)
		requireCode(t, err, onair.EUNAUTHORIZED)

		// last_used_at is recorded, at most once a minute.
		lastUsed := func() int64 {
			var v int64
			sum := sha256.Sum256([]byte(bobs.Reveal()))
			require.NoError(t, e.db.SQL().QueryRowContext(ctx, e.db.Rebind(`SELECT last_used_at FROM api_tokens WHERE token_hash = ?`),
				hex.EncodeToString(sum[:])).Scan(&v))
			return v
		}
		_, err = e.sessions.FindUserByAPIToken(ctx, bobs)
		require.NoError(t, err)
		require.Equal(t, startTime.UnixMilli(), lastUsed())
		e.clock.Add(30 * time.Second)
		_, err = e.sessions.FindUserByAPIToken(ctx, bobs)
		require.NoError(t, err)
		require.Equal(t, startTime.UnixMilli(), lastUsed())
		e.clock.Add(30 * time.Second)
		_, err = e.sessions.FindUserByAPIToken(ctx, bobs)
		require.NoError(t, err)
		require.Equal(t, startTime.Add(time.Minute).UnixMilli(), lastUsed())

		// Revoked, it stops working; alice's stay.
		require.NoError(t, e.sessions.RevokeAPITokens(ctx, bob.ID))
		_, err = e.sessions.FindUserByAPIToken(ctx, bobs)
		requireCode(t, err, onair.EUNAUTHORIZED)
		require.Equal(t, 2, e.count(t, `SELECT COUNT(*) FROM api_tokens`))
	})
}
