package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

// TestUniqueViolation checks that every dialect recognises its driver's unique-violation
// error, and nothing else.
func TestUniqueViolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		insert := e.db.Rebind(`INSERT INTO settings (name, value) VALUES (?, ?)`)
		_, err := e.db.SQL().ExecContext(ctx, insert, "k", "v")
		require.NoError(t, err)
		_, err = e.db.SQL().ExecContext(ctx, insert, "k", "w")
		require.Error(t, err)
		require.True(t, store.IsUniqueViolation(e.db, fmt.Errorf("wrapped: %w", err)), "%v", err)
		// A foreign key violation is something else.
		_, err = e.db.SQL().ExecContext(ctx, e.db.Rebind(`INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			"h", "c", 999, 0, 0)
		require.Error(t, err)
		require.False(t, store.IsUniqueViolation(e.db, err), "%v", err)
		require.False(t, store.IsUniqueViolation(e.db, nil))
	})
}

// TestConcurrentWrites races writers on the same rows: one of several sign-ups with the
// same name wins and the others get ECONFLICT; follows, bans, channel updates and key
// resets neither fail nor deadlock.
func TestConcurrentWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")

		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = e.users.CreateUser(ctx, &onair.User{Username: "same"}, "12345678")
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			requireMessage(t, err, onair.ECONFLICT, `Username "same" is already taken.`)
		}
		require.Equal(t, 1, won)

		const rounds = 5
		fail := make(chan error, 8*n*rounds)
		for i := range n {
			wg.Go(func() {
				for r := range rounds {
					if err := e.channels.Follow(ctx, bob, "alice"); err != nil {
						fail <- fmt.Errorf("follow: %w", err)
					}
					if err := e.chat.BanFromChat(ctx, alice, "alice", "carol", time.Duration(i+1)*time.Minute); err != nil {
						fail <- fmt.Errorf("ban: %w", err)
					}
					tags := []string{fmt.Sprintf("t%d", i), fmt.Sprintf("r%d", r), "common"}
					if _, err := e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Tags: &tags}); err != nil {
						fail <- fmt.Errorf("update channel: %w", err)
					}
					if _, err := e.keys.ResetStreamKey(ctx, alice.ID); err != nil {
						fail <- fmt.Errorf("reset key: %w", err)
					}
					if err := e.chat.SaveMessage(ctx, &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: "hi"}); err != nil {
						fail <- fmt.Errorf("chat: %w", err)
					}
				}
			})
		}
		wg.Wait()
		close(fail)
		for err := range fail {
			require.NoError(t, err)
		}
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM follows`))
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM chat_bans WHERE user_id = ?`, carol.ID))
		info, err := e.channels.ChannelInfo(ctx, "alice")
		require.NoError(t, err)
		require.Len(t, info.Tags, 3)
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM stream_keys k JOIN channels c ON c.id = k.channel_id WHERE c.user_id = ?`, alice.ID))
		require.Equal(t, n*rounds, e.count(t, `SELECT COUNT(*) FROM chat_messages`))
	})
}

// TestMigrationFromInit upgrades a database made by the first migration and holding a
// user: the user gets the new defaults and their channel its live video.
func TestMigrationFromInit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		tdb := b.newDB(t)
		p, raw := b.migrations(t, tdb)
		_, err := p.UpTo(ctx, 1)
		require.NoError(t, err)
		_, err = raw.ExecContext(ctx, map[string]string{
			"sqlite":   `INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ('old', 'x', 1, 5)`,
			"postgres": `INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ('old', 'x', TRUE, 5)`,
			"mysql":    `INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ('old', 'x', TRUE, 5)`,
		}[b.name])
		require.NoError(t, err)
		var oldID int64
		require.NoError(t, raw.QueryRowContext(ctx, `SELECT id FROM users WHERE username = 'old'`).Scan(&oldID))
		_, err = raw.ExecContext(ctx, `INSERT INTO channels (user_id, name, title, description, created_at) SELECT id, username, 'Old title', '', 6 FROM users`)
		require.NoError(t, err)
		require.NoError(t, raw.Close())

		db := MustOpenDSN(t, tdb.dsn)
		require.Equal(t, []int64{1, 2, 3, 4, 5}, appliedMigrations(t, db))
		u, err := store.NewUserService(db).FindUserByID(ctx, oldID)
		require.NoError(t, err)
		require.False(t, u.Banned)
		require.True(t, u.IsAdmin)
		info, err := store.NewChannelService(db).ChannelInfo(ctx, "old")
		require.NoError(t, err)
		require.True(t, info.Recording)
		require.Equal(t, "Old title", info.Title)
		v, err := store.NewCommentService(db).ChannelVideo(ctx, "old")
		require.NoError(t, err)
		require.Equal(t, "live", v.Kind)

		// New users get ids after the old one.
		nu, _ := MustCreateUser(t, db, "newer")
		require.Greater(t, nu.ID, oldID)
	})
}
