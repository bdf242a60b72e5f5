package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

// mustRecording creates an active recording of channel started at the env clock.
func mustRecording(tb testing.TB, e *env, recs *store.RecordingService, channel, title string) *onair.Recording {
	tb.Helper()
	r := &onair.Recording{Channel: channel, Title: title, StartedAt: e.clock.Now()}
	require.NoError(tb, recs.CreateRecording(tb.Context(), r))
	return r
}

func TestRecordingServiceCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		alice := e.mustUser(t, "alice")

		r := mustRecording(t, e, recs, "alice", "  Morning \x01show  ")
		require.NotZero(t, r.ID)
		require.NotZero(t, r.VideoID)
		require.Equal(t, alice.ID, r.UserID)
		require.Equal(t, "Morning  show", r.Title)
		require.Equal(t, onair.RecordingActive, r.Status)
		require.Equal(t, startTime, r.StartedAt)

		got, err := recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, r, got)

		// The recording's video takes comments.
		v, err := e.comments.FindVideo(ctx, r.VideoID)
		require.NoError(t, err)
		require.Equal(t, &onair.Video{ID: r.VideoID, Kind: "recording", Channel: "alice"}, v)
		live, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)
		require.NotEqual(t, live.ID, r.VideoID, "the live video stays the channel's video")

		long := mustRecording(t, e, recs, "alice", strings.Repeat("é", onair.MaxRecordingTitleLen+10))
		require.Equal(t, strings.Repeat("é", onair.MaxRecordingTitleLen), long.Title)

		err = recs.CreateRecording(ctx, &onair.Recording{Channel: "ghost"})
		requireMessage(t, err, onair.ENOTFOUND, `Channel "ghost" not found.`)
		_, err = recs.FindRecording(ctx, 9999)
		requireMessage(t, err, onair.ENOTFOUND, "Recording not found.")
	})
}

func TestRecordingServiceLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		e.mustUser(t, "alice")
		r := mustRecording(t, e, recs, "alice", "live")

		p := onair.RecordingProgress{Duration: 12345 * time.Millisecond, Bytes: 1 << 20, Segments: 6}
		require.NoError(t, recs.UpdateRecordingProgress(ctx, r.ID, p))
		got, err := recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, p.Duration, got.Duration)
		require.Equal(t, p.Bytes, got.Bytes)
		require.Equal(t, 6, got.Segments)
		require.Nil(t, got.EndedAt)

		ended := startTime.Add(time.Minute)
		final := onair.RecordingProgress{Duration: 60 * time.Second, Bytes: 5 << 20, Segments: 30}
		require.NoError(t, recs.FinishRecording(ctx, r.ID, final, ended))
		require.NoError(t, recs.FinishRecording(ctx, r.ID, final, ended), "finishing twice is no error")
		got, err = recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, onair.RecordingFinished, got.Status)
		require.Equal(t, ended, *got.EndedAt)
		require.Equal(t, final.Duration, got.Duration)
		require.Equal(t, final.Bytes, got.Bytes)
		require.Equal(t, 30, got.Segments)

		// Progress no longer changes a finished recording.
		require.NoError(t, recs.UpdateRecordingProgress(ctx, r.ID, p))
		got, err = recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, final.Bytes, got.Bytes)

		f := mustRecording(t, e, recs, "alice", "full")
		require.NoError(t, recs.FailRecording(ctx, f.ID, p, ended, "disk full"))
		got, err = recs.FindRecording(ctx, f.ID)
		require.NoError(t, err)
		require.Equal(t, onair.RecordingFailed, got.Status)
		require.Equal(t, "disk full", got.Reason)

		require.NoError(t, recs.AddRecordingView(ctx, r.ID))
		require.NoError(t, recs.AddRecordingView(ctx, r.ID))
		got, err = recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, 2, got.Views)

		requireCode(t, recs.FinishRecording(ctx, 9999, final, ended), onair.ENOTFOUND)
		requireCode(t, recs.AddRecordingView(ctx, 9999), onair.ENOTFOUND)
	})
}

func TestRecordingServiceLists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		e.mustUser(t, "alice")
		e.mustUser(t, "bob")

		var alices []*onair.Recording
		for i := range 3 {
			alices = append(alices, mustRecording(t, e, recs, "alice", "a"+string(rune('0'+i))))
			e.clock.Add(time.Hour)
		}
		bobs := mustRecording(t, e, recs, "bob", "b")
		require.NoError(t, recs.FinishRecording(ctx, alices[0].ID, onair.RecordingProgress{}, e.clock.Now()))
		require.NoError(t, recs.FailRecording(ctx, alices[1].ID, onair.RecordingProgress{}, e.clock.Now(), "disk full"))

		list, err := recs.RecordingsByChannel(ctx, "alice", 0, 0)
		require.NoError(t, err)
		require.Equal(t, []string{"a2", "a1", "a0"}, titles(list), "newest first")
		list, err = recs.RecordingsByChannel(ctx, "alice", 1, 1)
		require.NoError(t, err)
		require.Equal(t, []string{"a1"}, titles(list))
		list, err = recs.RecordingsByChannel(ctx, "bob", 5, 10)
		require.NoError(t, err)
		require.Empty(t, list)
		require.NotNil(t, list)
		_, err = recs.RecordingsByChannel(ctx, "ghost", 0, 10)
		requireCode(t, err, onair.ENOTFOUND)

		active, err := recs.ActiveRecordings(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"a2", "b"}, titles(active))

		all, err := recs.AllRecordings(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"a0", "a1", "a2", "b"}, titles(all), "oldest first")
		require.Equal(t, bobs.UserID, all[3].UserID)
	})
}

// TestRecordingServiceActiveByNode checks that each node of a cluster sharing the
// database sees only its own active recordings: a node's repair at start must not finish
// another node's running recording.
func TestRecordingServiceActiveByNode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		e.mustUser(t, "alice")
		e.mustUser(t, "bob")

		create := func(channel, title, node string) *onair.Recording {
			t.Helper()
			r := &onair.Recording{Channel: channel, Title: title, StartedAt: e.clock.Now(), Node: node}
			require.NoError(t, recs.CreateRecording(ctx, r))
			require.Equal(t, node, r.Node)
			e.clock.Add(time.Minute)
			return r
		}
		a1 := create("alice", "a1", "a")
		create("bob", "b1", "b")
		create("alice", "single", "")
		a2 := create("bob", "a2", "a")
		long := strings.Repeat("n", 63) // the longest node name config allows
		create("alice", "long", long)
		require.NoError(t, recs.FinishRecording(ctx, a1.ID, onair.RecordingProgress{}, e.clock.Now()))

		for node, want := range map[string][]string{
			"a": {"a2"}, "b": {"b1"}, "": {"single"}, long: {"long"}, "c": {},
		} {
			active, err := recs.ActiveRecordings(ctx, node)
			require.NoError(t, err)
			require.Equal(t, want, titles(active), "node %q", node)
			for _, r := range active {
				require.Equal(t, node, r.Node)
			}
		}
		got, err := recs.FindRecording(ctx, a2.ID)
		require.NoError(t, err)
		require.Equal(t, "a", got.Node)
		all, err := recs.AllRecordings(ctx)
		require.NoError(t, err)
		require.Len(t, all, 5, "every node's recordings, finished or not")
	})
}

func titles(recs []*onair.Recording) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Title
	}
	return out
}

func TestRecordingServiceRename(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		admin := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		r := mustRecording(t, e, recs, "alice", "old")

		cases := []struct {
			name  string
			actor *onair.User
			title string
			code  string
			msg   string
		}{
			{name: "anonymous", title: "x", code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "other user", actor: bob, title: "x", code: onair.EFORBIDDEN, msg: "Only the channel's owner can rename its recordings."},
			{name: "admin", actor: admin, title: "x", code: onair.EFORBIDDEN, msg: "Only the channel's owner can rename its recordings."},
			{name: "banned owner", actor: &onair.User{ID: alice.ID, Banned: true}, title: "x", code: onair.EFORBIDDEN, msg: "This account is banned."},
			{name: "too long", actor: alice, title: strings.Repeat("x", onair.MaxRecordingTitleLen+1), code: onair.EINVALID,
				msg: "Title must be at most 140 characters."},
			{name: "control", actor: alice, title: "a\nb", code: onair.EINVALID, msg: "Title must not contain control characters."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				_, err := recs.RenameRecording(ctx, ca.actor, r.ID, ca.title)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}
		_, err := recs.RenameRecording(ctx, alice, 9999, "x")
		requireCode(t, err, onair.ENOTFOUND)

		got, err := recs.RenameRecording(ctx, alice, r.ID, "  New title ")
		require.NoError(t, err)
		require.Equal(t, "New title", got.Title)
		again, err := recs.FindRecording(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, "New title", again.Title)
	})
}

func TestRecordingServiceDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		recs := store.NewRecordingService(e.db)
		admin := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		done := onair.RecordingProgress{Segments: 1}

		active := mustRecording(t, e, recs, "alice", "running")
		requireMessage(t, recs.DeleteRecording(ctx, alice, active.ID), onair.ECONFLICT,
			"The recording is still running: end the broadcast first.")

		r := mustRecording(t, e, recs, "alice", "r")
		require.NoError(t, recs.FinishRecording(ctx, r.ID, done, e.clock.Now()))
		c, err := e.comments.CreateComment(ctx, bob, r.VideoID, "nice")
		require.NoError(t, err)

		requireCode(t, recs.DeleteRecording(ctx, nil, r.ID), onair.EUNAUTHORIZED)
		requireMessage(t, recs.DeleteRecording(ctx, bob, r.ID), onair.EFORBIDDEN, "You cannot delete this recording.")
		require.NoError(t, recs.DeleteRecording(ctx, alice, r.ID))
		_, err = recs.FindRecording(ctx, r.ID)
		requireCode(t, err, onair.ENOTFOUND)
		_, err = e.comments.FindVideo(ctx, r.VideoID)
		requireCode(t, err, onair.ENOTFOUND)
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM comments WHERE id = ?`, c.ID))
		requireCode(t, recs.DeleteRecording(ctx, alice, r.ID), onair.ENOTFOUND)

		byAdmin := mustRecording(t, e, recs, "alice", "a")
		require.NoError(t, recs.FailRecording(ctx, byAdmin.ID, done, e.clock.Now(), "disk full"))
		require.NoError(t, recs.DeleteRecording(ctx, admin, byAdmin.ID))

		// Purge needs no actor, takes active recordings and ignores unknown ids.
		require.NoError(t, recs.PurgeRecording(ctx, active.ID))
		require.NoError(t, recs.PurgeRecording(ctx, active.ID))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM recordings`))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM videos WHERE kind = 'recording'`))

		// Deleting the account takes its recordings.
		kept := mustRecording(t, e, recs, "alice", "k")
		require.NoError(t, e.users.DeleteUser(ctx, alice, alice.ID))
		_, err = recs.FindRecording(ctx, kept.ID)
		requireCode(t, err, onair.ENOTFOUND)
	})
}

// TestRecordingMigrationDown rolls the recordings migration back and forth on a database
// holding a recording.
func TestRecordingMigrationDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		tdb := b.newDB(t)
		db := MustOpenDSN(t, tdb.dsn)
		MustCreateUser(t, db, "alice")
		require.NoError(t, store.NewRecordingService(db).CreateRecording(ctx, &onair.Recording{Channel: "alice"}))

		p, _ := b.migrations(t, tdb)
		_, err := p.DownTo(ctx, 2)
		require.NoError(t, err)
		_, err = p.Up(ctx)
		require.NoError(t, err)
		all, err := store.NewRecordingService(db).AllRecordings(ctx)
		require.NoError(t, err)
		require.Empty(t, all)
	})
}

// TestRecordingNodeMigration rolls migration 00005 back and forth: a recording written by
// a node keeps running; recordings from before the migration belong to the single node ("").
func TestRecordingNodeMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		tdb := b.newDB(t)
		db := MustOpenDSN(t, tdb.dsn)
		MustCreateUser(t, db, "alice")
		recs := store.NewRecordingService(db)
		require.NoError(t, recs.CreateRecording(ctx, &onair.Recording{Channel: "alice", Title: "x", Node: "a"}))

		p, _ := b.migrations(t, tdb)
		_, err := p.DownTo(ctx, 4)
		require.NoError(t, err)
		_, err = p.Up(ctx)
		require.NoError(t, err)

		active, err := recs.ActiveRecordings(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"x"}, titles(active), "an upgraded recording is the single node's")
		active, err = recs.ActiveRecordings(ctx, "a")
		require.NoError(t, err)
		require.Empty(t, active)
	})
}
