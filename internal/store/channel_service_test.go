package store_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestChannelServiceMarkChannelLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenDSN(t, b.newDSN(t))
		ctx := t.Context()
		channels := store.NewChannelService(db)
		u, _ := MustCreateUser(t, db, "alice")
		MustCreateUser(t, db, "bob")

		t1 := time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("Y", -7200))
		t2 := t1.Add(time.Hour)
		cases := []struct {
			name string
			ch   string
			at   time.Time
			code string
		}{
			{name: "first", ch: "alice", at: t1},
			{name: "again", ch: "alice", at: t2},
			{name: "same time again", ch: "alice", at: t2},
			{name: "missing", ch: "ghost", at: t1, code: onair.ENOTFOUND},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				err := channels.MarkChannelLive(ctx, ca.ch, ca.at)
				if ca.code != "" {
					requireCode(t, err, ca.code)
					return
				}
				require.NoError(t, err)
				ch, err := channels.FindChannelByName(ctx, ca.ch)
				require.NoError(t, err)
				require.NotNil(t, ch.LastLiveAt)
				require.Equal(t, ca.at.UTC().Truncate(time.Millisecond), *ch.LastLiveAt)
				byUser, err := channels.FindChannelByUserID(ctx, u.ID)
				require.NoError(t, err)
				require.Equal(t, ch, byUser)
			})
		}
		// Other channels are untouched.
		ch, err := channels.FindChannelByName(ctx, "bob")
		require.NoError(t, err)
		require.Nil(t, ch.LastLiveAt)
	})
}

func TestChannelServiceFindMissing(t *testing.T) {
	db := MustOpenDB(t)
	channels := store.NewChannelService(db)
	_, err := channels.FindChannelByName(t.Context(), "ghost")
	requireCode(t, err, onair.ENOTFOUND)
	require.Equal(t, `Channel "ghost" not found.`, onair.ErrorMessage(err))
	_, err = channels.FindChannelByUserID(t.Context(), 7)
	requireCode(t, err, onair.ENOTFOUND)
}

// TestChannelServiceCascade checks that deleting a user deletes its channel and keys.
func TestChannelServiceCascade(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	u, key := MustCreateUser(t, db, "alice")
	_, err := db.SQL().ExecContext(ctx, `DELETE FROM users WHERE id = ?`, u.ID)
	require.NoError(t, err)
	_, err = store.NewChannelService(db).FindChannelByName(ctx, "alice")
	requireCode(t, err, onair.ENOTFOUND)
	_, err = store.NewStreamKeyService(db).ChannelByStreamKey(ctx, key)
	requireCode(t, err, onair.ENOTFOUND)
	var n int
	require.NoError(t, db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_keys`).Scan(&n))
	require.Zero(t, n)
}

// readFileIfExists returns the contents of path, or nothing when it does not exist.
func readFileIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}
