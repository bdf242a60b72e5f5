package record

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record/recordtest"
	"github.com/onair/onair/internal/store"
	"github.com/onair/onair/internal/testutil"
)

// crashHelperEnv makes the test binary a recording server (runCrashHelper) that the
// crash test kills with SIGKILL.
const crashHelperEnv = "ONAIR_RECORD_CRASH_HELPER"

// runCrashHelper records the media in DIR/media.ts, published at twice real time on
// channel "alice", into DIR/onair.db and DIR/recordings, until it is killed.
func runCrashHelper(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 2
	}
	f, err := os.Open(filepath.Join(dir, "media.ts"))
	if err != nil {
		return fail(err)
	}
	m, err := recordtest.Demux(f)
	f.Close()
	if err != nil {
		return fail(err)
	}
	db := &store.DB{DSN: "sqlite:" + filepath.Join(dir, "onair.db"), Secret: testSecret}
	if err := db.Open(context.Background()); err != nil {
		return fail(err)
	}
	reg := &hub.Registry{Logger: discard}
	if err := reg.Start(); err != nil {
		return fail(err)
	}
	cm := &cmafstream.Manager{Hub: reg, Logger: discard}
	if err := cm.Start(); err != nil {
		return fail(err)
	}
	rec := &Recorder{
		CMAF:       cm,
		Channels:   store.NewChannelService(db),
		Recordings: store.NewRecordingService(db),
		Storage:    &LocalStorage{Dir: filepath.Join(dir, "recordings")},
		Logger:     discard,
	}
	if err := rec.Start(); err != nil {
		return fail(err)
	}
	reg.OnStart = rec.StreamStarted
	p, err := reg.Publish("alice", m.Tracks)
	if err != nil {
		return fail(err)
	}
	if err := recordtest.Publish(context.Background(), p, m, 2); err != nil {
		return fail(err)
	}
	select {} // until killed
}

// TestRepairAfterKill kills a recording server with SIGKILL in the middle of a broadcast,
// then starts a recorder on its data: the recording is listed as finished and plays up
// to its last complete segment.
func TestRepairAfterKill(t *testing.T) {
	testutil.RequireFFmpeg(t)
	dir := t.TempDir()
	ts, err := recordtest.MakeTS(recordtest.Options{Seconds: 30})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "media.ts"), ts, 0o600))
	dbPath := filepath.Join(dir, "onair.db")
	db := mustOpenDB(t, dbPath)
	mustChannel(t, db, "alice", "Crash course", true)
	recs := store.NewRecordingService(db)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Wait for a few segments, then kill -9.
	var id int64
	require.Eventually(t, func() bool {
		active, err := recs.ActiveRecordings(t.Context(), "")
		require.NoError(t, err)
		if len(active) == 0 {
			return false
		}
		id = active[0].ID
		b, err := os.ReadFile(filepath.Join(dir, "recordings", fmt.Sprint(id), PlaylistName))
		return err == nil && strings.Count(string(b), "#EXTINF") >= 3
	}, 20*time.Second, 20*time.Millisecond, "helper output: %s", &out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	killed = true
	require.Error(t, err)

	row, err := recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingActive, row.Status, "the crash left the row active")
	// A write that a crash interrupted leaves a temporary file.
	tmp := filepath.Join(dir, "recordings", fmt.Sprint(id), tempPrefix+"seg-99.m4s-123")
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))

	// Restart: Start repairs.
	e := mustEnv(t, envOptions{dbPath: dbPath, dataDir: filepath.Join(dir, "recordings")})
	rec, err := e.recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingFinished, rec.Status)
	require.Equal(t, "Crash course", rec.Title)
	require.GreaterOrEqual(t, rec.Segments, 3)
	require.NotNil(t, rec.EndedAt)
	list, err := e.recs.RecordingsByChannel(t.Context(), "alice", 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NoFileExists(t, tmp)

	pl, err := os.ReadFile(e.path(id, PlaylistName))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n"))
	require.Equal(t, rec.Segments, strings.Count(string(pl), "#EXTINF"))
	probed := ffprobeDuration(t, e.path(id, PlaylistName))
	require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), 0.2)
	ffmpegDecode(t, "-i", e.path(id, PlaylistName))
	_, err = e.local.Stat(t.Context(), id, ManifestName)
	require.NoError(t, err)
	// The poster, asked for at a recording's end, is made for a repaired one too.
	require.Eventually(t, func() bool {
		_, err := e.local.Stat(t.Context(), id, PosterName)
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "no poster for the repaired recording")
}

// TestRepairTrailingSegment repairs a recording whose last segment was stored but not
// yet listed (a crash between the two renames), and one without any segment.
func TestRepairTrailingSegment(t *testing.T) {
	e := mustEnv(t, envOptions{})
	mustChannel(t, e.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 7})
	recordtest.MustPublish(t, e.hub, "alice", m, 5)
	require.True(t, e.hub.End("alice"))
	done := e.waitRecording(t, "alice")
	require.GreaterOrEqual(t, done.Segments, 3)
	full, err := os.ReadFile(e.path(done.ID, PlaylistName))
	require.NoError(t, err)
	entries, ended, err := parsePlaylist(full)
	require.NoError(t, err)
	require.True(t, ended)

	// The state a crash leaves: the playlist lists all but the last segment, no manifest,
	// the row is active with old progress.
	pl := newPlaylist()
	for _, en := range entries[:len(entries)-1] {
		pl.add(en)
	}
	require.NoError(t, os.WriteFile(e.path(done.ID, PlaylistName), pl.render(false), 0o600))
	require.NoError(t, os.Remove(e.path(done.ID, ManifestName)))
	_, err = e.db.SQL().ExecContext(t.Context(), `UPDATE recordings SET status = 'recording', ended_at = NULL, segments = 1 WHERE id = ?`, done.ID)
	require.NoError(t, err)

	// An active recording without media.
	empty := &onair.Recording{Channel: "alice"}
	require.NoError(t, e.recs.CreateRecording(t.Context(), empty))

	n, err := Repair(t.Context(), e.recs, e.local, "", discard)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = e.recs.FindRecording(t.Context(), empty.ID)
	require.Equal(t, onair.ENOTFOUND, onair.ErrorCode(err))

	rec, err := e.recs.FindRecording(t.Context(), done.ID)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingFinished, rec.Status)
	require.Equal(t, done.Segments, rec.Segments)
	require.Equal(t, done.Bytes, rec.Bytes)
	require.InDelta(t, done.Duration.Seconds(), rec.Duration.Seconds(), 0.05)
	repaired, err := os.ReadFile(e.path(done.ID, PlaylistName))
	require.NoError(t, err)
	again, ended, err := parsePlaylist(repaired)
	require.NoError(t, err)
	require.True(t, ended)
	require.Len(t, again, len(entries))
	last, want := again[len(again)-1], entries[len(entries)-1]
	require.Equal(t, want.N, last.N)
	require.InDelta(t, want.Start.Seconds(), last.Start.Seconds(), 0.001)
	require.InDelta(t, want.Duration.Seconds(), last.Duration.Seconds(), 0.05)
	_, err = e.local.Stat(t.Context(), done.ID, ManifestName)
	require.NoError(t, err)
	ffmpegDecode(t, "-i", e.path(done.ID, PlaylistName))
}

// TestRepairLeavesOtherNodes starts node "a" on the database and storage of node "b"
// while b records (a cluster sharing both): a's repair leaves b's running recording
// alone, which goes on and ends finished by b.
func TestRepairLeavesOtherNodes(t *testing.T) {
	dbPath, dataDir := filepath.Join(t.TempDir(), "onair.db"), filepath.Join(t.TempDir(), "recordings")
	b := mustEnv(t, envOptions{dbPath: dbPath, dataDir: dataDir, recorder: func(r *Recorder) { r.Node = "b" }})
	mustChannel(t, b.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 7})
	p, err := b.hub.Publish("alice", m.Tracks)
	require.NoError(t, err)
	published := make(chan error, 1)
	go func() { published <- recordtest.Publish(t.Context(), p, m, 2) }()
	id := b.waitActive(t, "alice")
	running, err := b.recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, "b", running.Node)

	n, err := Repair(t.Context(), b.recs, b.local, "a", discard)
	require.NoError(t, err)
	require.Zero(t, n)
	a := mustEnv(t, envOptions{dbPath: dbPath, dataDir: dataDir, recorder: func(r *Recorder) { r.Node = "a" }})
	rec, err := a.recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingActive, rec.Status, "node a finished node b's running recording")
	require.Nil(t, rec.EndedAt)
	require.True(t, b.rec.Writing(id))

	require.NoError(t, <-published)
	require.True(t, b.hub.End("alice"))
	done := b.waitRecording(t, "alice")
	require.Equal(t, id, done.ID)
	require.Equal(t, onair.RecordingFinished, done.Status)
	require.InDelta(t, 7, done.Duration.Seconds(), 1, "the whole broadcast is recorded")
	ffmpegDecode(t, "-i", b.path(id, PlaylistName))
}

// TestRepairDead repairs, on node "a", the recording that node "b" left active when it
// died, as a survivor sharing b's storage does once the cluster declared b dead.
func TestRepairDead(t *testing.T) {
	dbPath, dataDir := filepath.Join(t.TempDir(), "onair.db"), filepath.Join(t.TempDir(), "recordings")
	b := mustEnv(t, envOptions{dbPath: dbPath, dataDir: dataDir, recorder: func(r *Recorder) { r.Node = "b" }})
	mustChannel(t, b.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 5})
	recordtest.MustPublish(t, b.hub, "alice", m, 5)
	require.True(t, b.hub.End("alice"))
	done := b.waitRecording(t, "alice")
	require.Equal(t, "b", done.Node)
	b.rec.Close()
	// What b's death leaves: the row active, the VOD manifest not written.
	require.NoError(t, os.Remove(b.path(done.ID, ManifestName)))
	_, err := b.db.SQL().ExecContext(t.Context(), `UPDATE recordings SET status = 'recording', ended_at = NULL, segments = 1 WHERE id = ?`, done.ID)
	require.NoError(t, err)

	a := mustEnv(t, envOptions{dbPath: dbPath, dataDir: dataDir, recorder: func(r *Recorder) { r.Node = "a" }})
	n, err := repair(t.Context(), a.recs, a.local, "b", "bob", true, discard, nil)
	require.NoError(t, err)
	require.Zero(t, n, "another channel of the dead node")
	a.rec.RepairDead("a", "alice") // itself: ignored
	rec, err := a.recs.FindRecording(t.Context(), done.ID)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingActive, rec.Status)

	a.rec.RepairDead("b", "alice")
	require.Eventually(t, func() bool {
		rec, err = a.recs.FindRecording(t.Context(), done.ID)
		require.NoError(t, err)
		return rec.Status == onair.RecordingFinished
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, done.Segments, rec.Segments)
	require.Equal(t, "b", rec.Node)
	_, err = a.local.Stat(t.Context(), done.ID, ManifestName)
	require.NoError(t, err)
	ffmpegDecode(t, "-i", a.path(done.ID, PlaylistName))

	// A recording of b without any segment yet: b may only be cut off, still about to
	// write it, so a survivor leaves it (b's own restart deletes it if b really died).
	empty := &onair.Recording{Channel: "alice", Node: "b"}
	require.NoError(t, a.recs.CreateRecording(t.Context(), empty))
	n, err = repair(t.Context(), a.recs, a.local, "b", "alice", true, discard, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	kept, err := a.recs.FindRecording(t.Context(), empty.ID)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingActive, kept.Status)
	require.NoError(t, a.recs.PurgeRecording(t.Context(), empty.ID))
}
