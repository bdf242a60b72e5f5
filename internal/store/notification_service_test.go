package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

func TestNotificationService(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")

		// Duplicates and unknown users are skipped; nobody is no error.
		require.NoError(t, e.notes.Notify(ctx, nil, onair.Notification{Kind: "live", Channel: "carol"}))
		require.NoError(t, e.notes.Notify(ctx, []int64{bob.ID, alice.ID, bob.ID, 999}, onair.Notification{
			ID: 77, Kind: "live", Channel: "carol", Text: "carol is live: <b>Speedrun</b>",
		}))
		e.clock.Add(time.Minute)
		require.NoError(t, e.notes.Notify(ctx, []int64{alice.ID}, onair.Notification{Kind: "live", Channel: "bob", Text: "bob is live"}))
		requireMessage(t, e.notes.Notify(ctx, []int64{alice.ID}, onair.Notification{Channel: "bob"}), onair.EINVALID, "Kind must not be empty.")

		list, err := e.notes.Notifications(ctx, alice.ID, 0)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "bob", list[0].Channel, "newest first")
		require.Equal(t, startTime.Add(time.Minute), list[0].CreatedAt)
		require.Equal(t, &onair.Notification{
			ID: list[1].ID, Kind: "live", Channel: "carol", Text: "carol is live: <b>Speedrun</b>", CreatedAt: startTime,
		}, list[1])
		require.NotEqual(t, int64(77), list[1].ID)
		list, err = e.notes.Notifications(ctx, alice.ID, 1)
		require.NoError(t, err)
		require.Len(t, list, 1)
		list, err = e.notes.Notifications(ctx, carol.ID, 10)
		require.NoError(t, err)
		require.Empty(t, list)
		require.Equal(t, 3, e.count(t, `SELECT COUNT(*) FROM notifications`))

		for _, want := range []struct {
			u *onair.User
			n int
		}{{alice, 2}, {bob, 1}, {carol, 0}} {
			n, err := e.notes.UnreadCount(ctx, want.u.ID)
			require.NoError(t, err)
			require.Equal(t, want.n, n, want.u.Username)
		}

		e.clock.Add(time.Minute)
		require.NoError(t, e.notes.MarkNotificationsRead(ctx, alice.ID))
		n, err := e.notes.UnreadCount(ctx, alice.ID)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = e.notes.UnreadCount(ctx, bob.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n, "other users are untouched")
		list, err = e.notes.Notifications(ctx, alice.ID, 10)
		require.NoError(t, err)
		for _, nt := range list {
			require.NotNil(t, nt.ReadAt)
			require.Equal(t, startTime.Add(2*time.Minute), *nt.ReadAt)
		}
		// Marking again keeps the first read time.
		e.clock.Add(time.Minute)
		require.NoError(t, e.notes.MarkNotificationsRead(ctx, alice.ID))
		list, err = e.notes.Notifications(ctx, alice.ID, 10)
		require.NoError(t, err)
		require.Equal(t, startTime.Add(2*time.Minute), *list[0].ReadAt)
	})
}

// TestNotificationServiceManyFollowers notifies more users than fit in one INSERT.
func TestNotificationServiceManyFollowers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		e.mustUser(t, "alice")
		// Users made directly: hashing passwords would take long.
		for i := range 450 {
			_, err := e.db.SQL().ExecContext(ctx, e.db.Rebind(`INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)`),
				fmt.Sprintf("fan_%03d", i), "x", 0)
			require.NoError(t, err)
		}
		rows, err := e.db.SQL().QueryContext(ctx, `SELECT id FROM users`)
		require.NoError(t, err)
		var ids []int64
		for rows.Next() {
			var id int64
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		ids = append(ids, 100_000, 100_001)
		require.NoError(t, e.notes.Notify(ctx, ids, onair.Notification{Kind: "live", Channel: "alice", Text: "alice is live"}))
		require.Equal(t, 451, e.count(t, `SELECT COUNT(*) FROM notifications`))
		n, err := e.notes.UnreadCount(ctx, ids[450])
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}
