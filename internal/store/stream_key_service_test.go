package store_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestStreamKeyServiceChannelByStreamKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenDSN(t, b.newDSN(t))
		ctx := t.Context()
		keys := store.NewStreamKeyService(db)
		alice, aliceKey := MustCreateUser(t, db, "alice")
		_, bobKey := MustCreateUser(t, db, "bob")

		// Flip the last character to another valid base32 one.
		last := aliceKey.Reveal()[len(aliceKey.Reveal())-1]
		flipped := byte('a')
		if last == 'a' {
			flipped = 'b'
		}
		cases := []struct {
			name    string
			key     onair.StreamKey
			channel string
		}{
			{name: "right", key: aliceKey, channel: "alice"},
			{name: "other user", key: bobKey, channel: "bob"},
			{name: "one character off", key: onair.StreamKey(aliceKey.Reveal()[:len(aliceKey.Reveal())-1] + string(flipped))},
			{name: "upper case", key: onair.StreamKey(strings.ToUpper(aliceKey.Reveal()))},
			{name: "prefix only", key: onair.StreamKey(aliceKey.Reveal()[:10])},
			{name: "longer", key: onair.StreamKey(aliceKey.Reveal() + "a")},
			{name: "empty"},
			{name: "channel name", key: "alice"},
			{name: "sql", key: "' OR '1'='1"},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				ch, err := keys.ChannelByStreamKey(ctx, ca.key)
				if ca.channel == "" {
					requireCode(t, err, onair.ENOTFOUND)
					require.Equal(t, "Stream key not found.", onair.ErrorMessage(err))
					require.Nil(t, ch)
					return
				}
				require.NoError(t, err)
				require.Equal(t, ca.channel, ch.Name)
			})
		}

		// After a reset the old key fails at once and the new one works.
		newKey, err := keys.ResetStreamKey(ctx, alice.ID)
		require.NoError(t, err)
		require.NotEqual(t, aliceKey.Reveal(), newKey.Reveal())
		_, err = keys.ChannelByStreamKey(ctx, aliceKey)
		requireCode(t, err, onair.ENOTFOUND)
		ch, err := keys.ChannelByStreamKey(ctx, newKey)
		require.NoError(t, err)
		require.Equal(t, "alice", ch.Name)
		got, err := keys.StreamKey(ctx, alice.ID)
		require.NoError(t, err)
		require.Equal(t, newKey.Reveal(), got.Reveal())
		// Bob's key is untouched.
		ch, err = keys.ChannelByStreamKey(ctx, bobKey)
		require.NoError(t, err)
		require.Equal(t, "bob", ch.Name)

		// The channel has exactly one key row left.
		var n int
		require.NoError(t, db.SQL().QueryRowContext(ctx, db.Rebind(
			`SELECT COUNT(*) FROM stream_keys k JOIN channels c ON c.id = k.channel_id WHERE c.user_id = ?`), alice.ID).Scan(&n))
		require.Equal(t, 1, n)
	})
}

func TestStreamKeyServiceMissingUser(t *testing.T) {
	db := MustOpenDB(t)
	keys := store.NewStreamKeyService(db)
	_, err := keys.StreamKey(t.Context(), 99)
	requireCode(t, err, onair.ENOTFOUND)
	_, err = keys.ResetStreamKey(t.Context(), 99)
	requireCode(t, err, onair.ENOTFOUND)
}

func TestStreamKeyFormat(t *testing.T) {
	db := MustOpenDB(t)
	keys := store.NewStreamKeyService(db)
	u, first := MustCreateUser(t, db, "alice")
	seen := map[string]bool{first.Reveal(): true}
	for range 50 {
		key, err := keys.ResetStreamKey(t.Context(), u.ID)
		require.NoError(t, err)
		s := key.Reveal()
		require.Len(t, s, store.StreamKeyLen)
		require.Equal(t, 37, store.StreamKeyLen)
		require.Regexp(t, `^live_[a-z2-7]{32}$`, s)
		require.False(t, seen[s], "key repeated")
		seen[s] = true
		// A stream key prints and logs as REDACTED.
		require.Equal(t, "REDACTED", key.String())
	}
}

func TestStreamKeyStoredEncrypted(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	u, key := MustCreateUser(t, db, "alice")

	// No column of any row holds the key, as text or bytes.
	for _, table := range []string{"users", "channels", "stream_keys"} {
		rows, err := db.SQL().QueryContext(ctx, `SELECT * FROM `+table)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case string:
					b = []byte(v)
				case []byte:
					b = v
				}
				require.False(t, bytes.Contains(b, []byte(key.Reveal())), "%s.%s holds the key", table, cols[i])
				require.False(t, bytes.Contains(b, []byte(key.Reveal()[len(store.StreamKeyPrefix):])), "%s.%s holds the key", table, cols[i])
			}
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}

	// The raw file does not hold it either.
	require.NoError(t, db.Close())
	reopened := MustOpenDSN(t, db.DSN)
	path := strings.TrimPrefix(db.DSN, "sqlite:")
	for _, suffix := range []string{"", "-wal"} {
		b, err := readFileIfExists(path + suffix)
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, []byte(key.Reveal())), "file%s holds the key", suffix)
	}

	// The owner can read it back, but not with another secret.
	got, err := store.NewStreamKeyService(reopened).StreamKey(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, key.Reveal(), got.Reveal())
	require.NoError(t, reopened.Close())

	other := &store.DB{DSN: db.DSN, Secret: bytes.Repeat([]byte{7}, store.SecretSize)}
	require.NoError(t, other.Open(ctx))
	defer func() { require.NoError(t, other.Close()) }()
	_, err = store.NewStreamKeyService(other).StreamKey(ctx, u.ID)
	require.EqualError(t, err, "decrypt stream key: authentication failed (wrong secret?)")
	// Lookups by hash do not need the secret.
	ch, err := store.NewStreamKeyService(other).ChannelByStreamKey(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "alice", ch.Name)
}

// TestStreamKeyBoundToChannel checks that an encrypted key copied to another channel's
// row does not decrypt there.
func TestStreamKeyBoundToChannel(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	alice, _ := MustCreateUser(t, db, "alice")
	bob, _ := MustCreateUser(t, db, "bob")
	_, err := db.SQL().ExecContext(ctx, `
		UPDATE stream_keys SET key_enc = (
			SELECT k.key_enc FROM stream_keys k JOIN channels c ON c.id = k.channel_id WHERE c.user_id = ?)
		WHERE channel_id = (SELECT id FROM channels WHERE user_id = ?)`, alice.ID, bob.ID)
	require.NoError(t, err)
	_, err = store.NewStreamKeyService(db).StreamKey(ctx, bob.ID)
	require.EqualError(t, err, "decrypt stream key: authentication failed (wrong secret?)")
}
