package record

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		os.Exit(runCrashHelper(dir))
	}
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

var testSecret = bytes.Repeat([]byte{0x42}, store.SecretSize)

// testEnv is a hub, its CMAF streams, a SQLite store and a recorder writing to a local
// storage in a temporary directory.
type testEnv struct {
	hub      *hub.Registry
	cmaf     *cmafstream.Manager
	db       *store.DB
	recs     *store.RecordingService
	channels *store.ChannelService
	local    *LocalStorage
	rec      *Recorder
}

// envOptions change a testEnv.
type envOptions struct {
	grace    time.Duration // hub grace period (default 300 ms)
	storage  func(Storage) Storage
	recorder func(*Recorder)
	dbPath   string // default: a new file
	dataDir  string // default: a new directory
	noStart  bool   // do not start the recorder
}

func mustEnv(t testing.TB, o envOptions) *testEnv {
	t.Helper()
	if o.grace == 0 {
		o.grace = 300 * time.Millisecond
	}
	if o.dbPath == "" {
		o.dbPath = filepath.Join(t.TempDir(), "onair.db")
	}
	if o.dataDir == "" {
		o.dataDir = filepath.Join(t.TempDir(), "recordings")
	}
	e := &testEnv{}
	e.db = mustOpenDB(t, o.dbPath)
	e.recs = store.NewRecordingService(e.db)
	e.channels = store.NewChannelService(e.db)
	e.local = &LocalStorage{Dir: o.dataDir}
	var st Storage = e.local
	if o.storage != nil {
		st = o.storage(st)
	}
	e.hub = &hub.Registry{Logger: discard, GracePeriod: o.grace}
	require.NoError(t, e.hub.Start())
	e.cmaf = &cmafstream.Manager{Hub: e.hub, Logger: discard}
	require.NoError(t, e.cmaf.Start())
	e.rec = &Recorder{
		CMAF:       e.cmaf,
		Channels:   e.channels,
		Recordings: e.recs,
		Storage:    st,
		Logger:     discard,
		EndTimeout: 5 * time.Second,
	}
	if o.recorder != nil {
		o.recorder(e.rec)
	}
	e.hub.OnStart = e.rec.StreamStarted
	if !o.noStart {
		require.NoError(t, e.rec.Start())
	}
	t.Cleanup(func() {
		e.hub.Close()
		e.rec.Close()
		e.cmaf.Close()
	})
	return e
}

func mustOpenDB(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db := &store.DB{DSN: "sqlite:" + path, Secret: testSecret}
	require.NoError(tb, db.Open(context.Background()))
	tb.Cleanup(func() { require.NoError(tb, db.Close()) })
	return db
}

// mustChannel adds a user and its channel with a title and a recording switch, directly
// in SQL (a password hash would cost more than the test).
func mustChannel(tb testing.TB, db *store.DB, name, title string, recording bool) int64 {
	tb.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	_, err := db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', ?)`), name, now)
	require.NoError(tb, err)
	var uid int64
	require.NoError(tb, db.SQL().QueryRowContext(ctx, db.Rebind(`SELECT id FROM users WHERE username = ?`), name).Scan(&uid))
	_, err = db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO channels (user_id, name, title, recording, created_at) VALUES (?, ?, ?, ?, ?)`),
		uid, name, title, recording, now)
	require.NoError(tb, err)
	return uid
}

// waitRecording waits until the channel has a recording in a final state and returns it.
func (e *testEnv) waitRecording(tb testing.TB, channel string) *onair.Recording {
	tb.Helper()
	var rec *onair.Recording
	require.Eventually(tb, func() bool {
		list, err := e.recs.RecordingsByChannel(context.Background(), channel, 0, 1)
		require.NoError(tb, err)
		if len(list) == 0 || list[0].Status == onair.RecordingActive {
			return false
		}
		rec = list[0]
		return true
	}, 20*time.Second, 20*time.Millisecond)
	return rec
}

// waitActive waits until the channel's recording is running and returns its id.
func (e *testEnv) waitActive(tb testing.TB, channel string) int64 {
	tb.Helper()
	var id int64
	require.Eventually(tb, func() bool {
		var ok bool
		id, ok = e.rec.Active(channel)
		return ok
	}, 10*time.Second, 5*time.Millisecond)
	return id
}

// ffprobeDuration returns the duration ffprobe reads from the URL or file.
func ffprobeDuration(tb testing.TB, input string) time.Duration {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", input).CombinedOutput()
	require.NoError(tb, err, "ffprobe: %s", out)
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(tb, err, "ffprobe output %q", out)
	return time.Duration(v * float64(time.Second))
}

// ffprobeStreams returns "codec_name,codec_type" per stream.
func ffprobeStreams(tb testing.TB, input string) []string {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name",
		"-of", "json", input).Output()
	require.NoError(tb, err, "ffprobe: %s", out)
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	require.NoError(tb, json.Unmarshal(out, &probe))
	var streams []string
	for _, s := range probe.Streams {
		streams = append(streams, s.CodecName+","+s.CodecType)
	}
	return streams
}

// ffmpegDecode decodes the whole input (ffmpeg -f null) and fails on any decoding error.
func ffmpegDecode(tb testing.TB, args ...string) {
	tb.Helper()
	all := append([]string{"-v", "error", "-xerror"}, args...)
	all = append(all, "-f", "null", "-")
	out, err := exec.Command("ffmpeg", all...).CombinedOutput()
	require.NoError(tb, err, "ffmpeg: %s", out)
	require.Empty(tb, strings.TrimSpace(string(out)), "ffmpeg reported errors")
}

func (e *testEnv) path(id int64, name string) string {
	return filepath.Join(e.local.Dir, fmt.Sprint(id), name)
}
