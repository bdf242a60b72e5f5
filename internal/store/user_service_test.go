package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestUserServiceCreateUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		now := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
		db := &store.DB{DSN: b.newDSN(t), Secret: testSecret, Now: func() time.Time { return now }}
		require.NoError(t, db.Open(t.Context()))
		defer func() { require.NoError(t, db.Close()) }()
		users := store.NewUserService(db)
		MustCreateUser(t, db, "taken")

		cases := []struct {
			name     string
			user     *onair.User
			password string
			code     string
			msg      string
		}{
			{name: "ok", user: &onair.User{Username: "alice"}, password: "correct horse"},
			{name: "ok with email", user: &onair.User{Username: "bob_2", Email: "bob@example.com"}, password: "12345678"},
			{name: "ok unicode password", user: &onair.User{Username: "carol"}, password: "pässwörd"},
			{name: "nil user", password: "12345678", code: onair.EINVALID, msg: "User required."},
			{name: "bad username", user: &onair.User{Username: "Bad Name"}, password: "12345678",
				code: onair.EINVALID, msg: "Username must be 3 to 30 characters of a-z, 0-9 and _."},
			{name: "short username", user: &onair.User{Username: "ab"}, password: "12345678",
				code: onair.EINVALID, msg: "Username must be 3 to 30 characters of a-z, 0-9 and _."},
			{name: "reserved name", user: &onair.User{Username: "admin"}, password: "12345678",
				code: onair.EINVALID, msg: `Username "admin" is reserved.`},
			{name: "short password", user: &onair.User{Username: "dave"}, password: "1234567",
				code: onair.EINVALID, msg: "Password must be at least 8 characters."},
			{name: "short unicode password", user: &onair.User{Username: "dave"}, password: "ääääääà",
				code: onair.EINVALID, msg: "Password must be at least 8 characters."},
			{name: "long password", user: &onair.User{Username: "dave"}, password: strings.Repeat("x", 1025),
				code: onair.EINVALID, msg: "Password must be at most 1024 characters."},
			{name: "bad email", user: &onair.User{Username: "erin", Email: "not an email"}, password: "12345678",
				code: onair.EINVALID, msg: "Email address is not valid."},
			{name: "email with name", user: &onair.User{Username: "erin", Email: "Erin <erin@example.com>"}, password: "12345678",
				code: onair.EINVALID, msg: "Email address is not valid."},
			{name: "duplicate", user: &onair.User{Username: "taken"}, password: "12345678",
				code: onair.ECONFLICT, msg: `Username "taken" is already taken.`},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				key, err := users.CreateUser(t.Context(), ca.user, ca.password)
				if ca.code != "" {
					requireCode(t, err, ca.code)
					require.Equal(t, ca.msg, onair.ErrorMessage(err))
					require.Empty(t, key.Reveal())
					return
				}
				require.NoError(t, err)
				require.NotZero(t, ca.user.ID)
				require.Equal(t, now.UTC().Truncate(time.Millisecond), ca.user.CreatedAt)
				require.False(t, ca.user.IsAdmin)

				got, err := users.FindUserByUsername(t.Context(), ca.user.Username)
				require.NoError(t, err)
				require.Equal(t, ca.user, got)
				got, err = users.FindUserByID(t.Context(), ca.user.ID)
				require.NoError(t, err)
				require.Equal(t, ca.user, got)

				// The channel is named after the user, and the key publishes to it.
				ch, err := store.NewChannelService(db).FindChannelByName(t.Context(), ca.user.Username)
				require.NoError(t, err)
				require.Equal(t, ca.user.ID, ch.UserID)
				require.Nil(t, ch.LastLiveAt)
				byKey, err := store.NewStreamKeyService(db).ChannelByStreamKey(t.Context(), key)
				require.NoError(t, err)
				require.Equal(t, ch, byKey)
				stored, err := store.NewStreamKeyService(db).StreamKey(t.Context(), ca.user.ID)
				require.NoError(t, err)
				require.Equal(t, key.Reveal(), stored.Reveal())
			})
		}
	})
}

func TestUserServiceFirstUserIsAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenDSN(t, b.newDSN(t))
		users := store.NewUserService(db)
		cases := []struct {
			name  string
			admin bool
			want  bool
		}{
			{name: "first", want: true},
			{name: "second"},
			{name: "explicit", admin: true, want: true},
			{name: "fourth"},
		}
		for _, ca := range cases {
			u := &onair.User{Username: ca.name, IsAdmin: ca.admin}
			_, err := users.CreateUser(t.Context(), u, "12345678")
			require.NoError(t, err)
			require.Equal(t, ca.want, u.IsAdmin, ca.name)
			got, err := users.FindUserByUsername(t.Context(), ca.name)
			require.NoError(t, err)
			require.Equal(t, ca.want, got.IsAdmin, ca.name)
		}
	})
}

func TestUserServiceFindMissing(t *testing.T) {
	db := MustOpenDB(t)
	users := store.NewUserService(db)
	_, err := users.FindUserByUsername(t.Context(), "ghost")
	requireCode(t, err, onair.ENOTFOUND)
	require.Equal(t, `User "ghost" not found.`, onair.ErrorMessage(err))
	_, err = users.FindUserByID(t.Context(), 42)
	requireCode(t, err, onair.ENOTFOUND)
}

func TestUserServiceAuthenticate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenDSN(t, b.newDSN(t))
		users := store.NewUserService(db)
		u := &onair.User{Username: "alice", Email: "alice@example.com"}
		_, err := users.CreateUser(t.Context(), u, "correct horse")
		require.NoError(t, err)

		cases := []struct {
			name     string
			username string
			password string
			ok       bool
		}{
			{name: "right", username: "alice", password: "correct horse", ok: true},
			{name: "wrong password", username: "alice", password: "correct horsE"},
			{name: "empty password", username: "alice"},
			{name: "unknown user", username: "bob", password: "correct horse"},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				got, err := users.Authenticate(t.Context(), ca.username, ca.password)
				if !ca.ok {
					requireCode(t, err, onair.EUNAUTHORIZED)
					require.Equal(t, "Invalid username or password.", onair.ErrorMessage(err))
					require.Nil(t, got)
					return
				}
				require.NoError(t, err)
				require.Equal(t, u, got)
			})
		}
	})
}

func TestUserServicePasswordStoredHashed(t *testing.T) {
	store.UseRealPasswordCost(t)
	db := MustOpenDB(t)
	u, _ := MustCreateUser(t, db, "alice")
	var hash string
	require.NoError(t, db.SQL().QueryRowContext(t.Context(), `SELECT password_hash FROM users WHERE id = ?`, u.ID).Scan(&hash))
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$"), hash)
	require.NotContains(t, hash, "password-alice")
	ok, err := store.VerifyPassword(hash, "password-alice")
	require.NoError(t, err)
	require.True(t, ok)
}
