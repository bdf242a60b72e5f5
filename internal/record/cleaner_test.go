package record

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

// retentionFixture is a store with five recordings of 100 bytes, oldest first:
//
//	a1 alice, ended 10 days ago
//	b1 bob, 5 days ago
//	a2 alice, 2 days ago
//	a3 alice, still recording (started a day ago)
//	b2 bob, an hour ago
//
// and media in storage for each, plus an orphan (stored media without a row).
type retentionFixture struct {
	recs  *store.RecordingService
	st    *LocalStorage
	now   time.Time
	ids   map[string]int64
	order []string
}

const orphanID = 9999

func mustRetentionFixture(t *testing.T) *retentionFixture {
	t.Helper()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "onair.db"))
	mustChannel(t, db, "alice", "", true)
	mustChannel(t, db, "bob", "", true)
	f := &retentionFixture{
		recs: store.NewRecordingService(db),
		st:   &LocalStorage{Dir: filepath.Join(t.TempDir(), "recordings")},
		now:  time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		ids:  map[string]int64{},
	}
	ctx := t.Context()
	rows := []struct {
		name, channel string
		ago           time.Duration
		active        bool
	}{
		{"a1", "alice", 240 * time.Hour, false},
		{"b1", "bob", 120 * time.Hour, false},
		{"a2", "alice", 48 * time.Hour, false},
		{"a3", "alice", 24 * time.Hour, true},
		{"b2", "bob", time.Hour, false},
	}
	for _, r := range rows {
		rec := &onair.Recording{Channel: r.channel, Title: r.name, StartedAt: f.now.Add(-r.ago - time.Minute)}
		require.NoError(t, f.recs.CreateRecording(ctx, rec))
		p := onair.RecordingProgress{Duration: time.Minute, Bytes: 100, Segments: 1}
		if r.active {
			require.NoError(t, f.recs.UpdateRecordingProgress(ctx, rec.ID, p))
		} else {
			require.NoError(t, f.recs.FinishRecording(ctx, rec.ID, p, f.now.Add(-r.ago)))
		}
		require.NoError(t, f.st.Put(ctx, rec.ID, SegmentName(0), strings.NewReader(strings.Repeat("x", 100))))
		f.ids[r.name] = rec.ID
		f.order = append(f.order, r.name)
	}
	require.NoError(t, f.st.Put(ctx, orphanID, SegmentName(0), strings.NewReader("orphan")))
	return f
}

// left returns the names of the recordings left in the store, and checks that storage
// holds exactly their media.
func (f *retentionFixture) left(t *testing.T) []string {
	t.Helper()
	all, err := f.recs.AllRecordings(t.Context())
	require.NoError(t, err)
	var names []string
	var ids []int64
	for _, r := range all {
		names = append(names, r.Title)
		ids = append(ids, r.ID)
	}
	stored, err := f.st.Recordings(t.Context())
	require.NoError(t, err)
	require.Equal(t, ids, stored)
	return names
}

// limits are the retention limits of a Cleaner.
type limits struct {
	MaxAge    time.Duration
	MaxBytes  int64
	UserQuota int64
}

func TestCleanerRunOnce(t *testing.T) {
	cases := []struct {
		name    string
		limits  limits
		left    []string
		deleted int
	}{
		{name: "no limits", left: []string{"a1", "b1", "a2", "a3", "b2"}},
		{name: "max age", limits: limits{MaxAge: 72 * time.Hour}, left: []string{"a2", "a3", "b2"}, deleted: 2},
		{name: "site bytes", limits: limits{MaxBytes: 300}, left: []string{"a2", "a3", "b2"}, deleted: 2},
		{name: "site bytes never take a running recording", limits: limits{MaxBytes: 50}, left: []string{"a3"}, deleted: 4},
		{name: "user quota", limits: limits{UserQuota: 150}, left: []string{"a3", "b2"}, deleted: 3},
		{name: "all limits", limits: limits{MaxAge: 200 * time.Hour, MaxBytes: 350, UserQuota: 250},
			left: []string{"a2", "a3", "b2"}, deleted: 2},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			f := mustRetentionFixture(t)
			c := &Cleaner{
				Recordings: f.recs,
				Storage:    f.st,
				MaxAge:     ca.limits.MaxAge,
				MaxBytes:   ca.limits.MaxBytes,
				UserQuota:  ca.limits.UserQuota,
				Logger:     discard,
				Now:        func() time.Time { return f.now },
			}
			res, err := c.RunOnce(t.Context())
			require.NoError(t, err)
			require.Equal(t, ca.deleted, res.Deleted)
			require.Equal(t, int64(100*ca.deleted), res.Bytes)
			require.Equal(t, 1, res.Orphans)
			require.Equal(t, ca.left, f.left(t))

			// A second run finds nothing more to do.
			res, err = c.RunOnce(t.Context())
			require.NoError(t, err)
			require.Equal(t, CleanResult{}, res)
		})
	}
}

func TestCleanerRunsAtStart(t *testing.T) {
	f := mustRetentionFixture(t)
	c := &Cleaner{
		Recordings: f.recs,
		Storage:    f.st,
		MaxAge:     72 * time.Hour,
		Interval:   time.Hour,
		Logger:     discard,
		Now:        func() time.Time { return f.now },
	}
	require.NoError(t, c.Start())
	defer c.Close()
	require.Eventually(t, func() bool {
		all, err := f.recs.AllRecordings(context.Background())
		require.NoError(t, err)
		return len(all) == 3
	}, 10*time.Second, 10*time.Millisecond)
	c.Trigger()
	c.Trigger() // never blocks
}

func TestCleanerStartValidates(t *testing.T) {
	require.EqualError(t, (&Cleaner{}).Start(), "cleaner: recording service is required")
	require.EqualError(t, (&Cleaner{Recordings: &store.RecordingService{}}).Start(), "cleaner: storage is required")
	require.EqualError(t, (&Cleaner{Recordings: &store.RecordingService{}, Storage: &LocalStorage{}, MaxAge: -1}).Start(),
		"cleaner: limits must not be negative")
}
