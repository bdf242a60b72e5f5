package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", for the integrity checks

	"github.com/onair/onair/internal/testutil"
)

// TestCrashRestart kills a real onair process (kill -9) while a channel is live with
// chat and recording on, restarts it on the same data directory and checks what a crash
// may leave behind. "Visible" means what the API, the pages and the VOD routes show: every
// recording they list is finished and plays to its last complete segment, no listed
// recording lacks its media, no stored media lacks its row for long (the retention
// cleaner removes orphans at start), and no temporary file of an interrupted write is
// left in the recordings directory.
func TestCrashRestart(t *testing.T) {
	testutil.RequireFFmpeg(t)
	if testing.Short() {
		t.Skip("builds the binary and streams for ~20 s")
	}
	bin := mustBuildOnair(t)
	dir := t.TempDir()

	out, err := runOnair(bin, dir, "correct horse battery\n", "user", "create", "alice", "--password-stdin")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startOnairProcess(t, ctx, bin, dir)

	o := defaultPublish
	o.seconds = 120
	pub := publish(t, ctx, "rtmp://"+srv.rtmp+"/live/"+key, o)
	waitLiveAt(t, srv.http, "alice")

	// Chat traffic: alice signs in and sends a message every 700 ms (within the 1/s rate
	// and its burst) over a WebSocket, which also receives the room's messages.
	client := mustLoginClient(t, srv.http, "alice", "correct horse battery")
	chat := startChatter(t, ctx, client, srv.http, "alice")

	// Recording: wait for a few complete segments, then kill -9 in the middle of the
	// stream (segments, playlist rewrites and chat inserts are all in flight).
	recDir := filepath.Join(dir, "recordings")
	require.Eventually(t, func() bool { return len(completeSegments(t, recDir)) >= 4 }, 40*time.Second, 200*time.Millisecond,
		"the recording never got 4 segments")
	require.Eventually(t, func() bool { return chat.acked() >= 3 }, 20*time.Second, 100*time.Millisecond, "no chat messages echoed")
	srv.kill()
	chat.stop()
	pub.Stop()
	segsAtCrash := completeSegments(t, recDir)
	acked := chat.ackedTexts()
	t.Logf("killed with %d complete segments on disk and %d chat messages acknowledged", len(segsAtCrash), len(acked))

	srv2 := startOnairProcess(t, ctx, bin, dir)

	t.Run("db integrity", func(t *testing.T) {
		db, err := sql.Open("sqlite", filepath.Join(dir, "onair.db")+"?_pragma=busy_timeout(5000)")
		require.NoError(t, err)
		defer db.Close()
		var res string
		require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&res))
		require.Equal(t, "ok", res)
		rows, err := db.Query("PRAGMA foreign_key_check")
		require.NoError(t, err)
		var bad []string
		for rows.Next() {
			var table, parent string
			var rowid, fkid sql.NullInt64
			require.NoError(t, rows.Scan(&table, &rowid, &parent, &fkid))
			bad = append(bad, fmt.Sprintf("%s row %d → %s", table, rowid.Int64, parent))
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Empty(t, bad, "foreign key violations")
		var active int
		require.NoError(t, db.QueryRow("SELECT count(*) FROM recordings WHERE status = 'recording'").Scan(&active))
		require.Zero(t, active, "recordings still marked active after the restart")
	})

	t.Run("channel offline", func(t *testing.T) {
		var ch struct {
			Live   bool            `json:"live"`
			Stream json.RawMessage `json:"stream"`
		}
		require.NoError(t, getJSON("http://"+srv2.http+"/api/v1/channels/alice", &ch))
		require.False(t, ch.Live)
		require.Empty(t, ch.Stream)
		var streams []json.RawMessage
		require.NoError(t, getJSON("http://"+srv2.http+"/api/v1/streams", &streams))
		require.Empty(t, streams)
		code, _, _ := getBody(t, "http://"+srv2.http+"/hls/alice/index.m3u8")
		require.Equal(t, http.StatusNotFound, code)
		code, page, _ := getBody(t, "http://"+srv2.http+"/@alice")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, page, `data-live="false"`)
		require.Regexp(t, `id="live-badge"[^>]* hidden`, page)
	})

	t.Run("chat kept", func(t *testing.T) {
		// A message the room echoed was stored first, so it survives the crash.
		var hist []struct {
			Text string `json:"text"`
		}
		require.NoError(t, getJSON("http://"+srv2.http+"/api/v1/channels/alice/chat/history", &hist))
		have := map[string]bool{}
		for _, m := range hist {
			have[m.Text] = true
		}
		for _, text := range acked {
			require.True(t, have[text], "acknowledged chat message %q lost", text)
		}
	})

	t.Run("recording plays to its last segment", func(t *testing.T) {
		type rec struct {
			ID       int64   `json:"id"`
			Status   string  `json:"status"`
			Duration float64 `json:"duration"`
		}
		var list []rec
		require.NoError(t, getJSON("http://"+srv2.http+"/api/v1/channels/alice/recordings", &list))
		require.Len(t, list, 1)
		r := list[0]
		require.Equal(t, "finished", r.Status)

		code, body, _ := getBody(t, fmt.Sprintf("http://%s/vod/%d/index.m3u8", srv2.http, r.ID))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "#EXT-X-ENDLIST")
		var listed []string
		for _, l := range strings.Split(body, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				listed = append(listed, l)
			}
		}
		// Every segment that was complete at the crash is listed, and nothing else.
		require.Len(t, listed, len(segsAtCrash), "playlist %s\non disk %v", body, segsAtCrash)
		for _, u := range listed {
			code, _, _ := getBody(t, fmt.Sprintf("http://%s/vod/%d/%s", srv2.http, r.ID, u))
			require.Equal(t, http.StatusOK, code, u)
		}

		// The repaired recording gets its poster, as a finished one does.
		require.Eventually(t, func() bool {
			code, body, _ := getBody(t, fmt.Sprintf("http://%s/vod/%d/poster.jpg", srv2.http, r.ID))
			return code == http.StatusOK && strings.HasPrefix(body, "\xff\xd8")
		}, 15*time.Second, 200*time.Millisecond, "no poster")

		// ffmpeg decodes the whole replay without an error, and both the playlist and the
		// MP4 download last as long as the row says.
		vod := fmt.Sprintf("http://%s/vod/%d/index.m3u8", srv2.http, r.ID)
		dec, err := exec.Command("ffmpeg", "-v", "error", "-i", vod, "-f", "null", "-").CombinedOutput()
		require.NoError(t, err, string(dec))
		require.Empty(t, strings.TrimSpace(string(dec)), "decode errors")
		for _, path := range []string{fmt.Sprintf("/vod/%d/index.m3u8", r.ID), fmt.Sprintf("/vod/%d/download.mp4", r.ID)} {
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", "http://"+srv2.http+path).Output()
			require.NoError(t, err, path)
			d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			require.NoError(t, err, path)
			require.InDelta(t, r.Duration, d, 1.0, path)
			require.Greater(t, d, 6.0, path) // the ≥ 4 segments of ~2 s each
		}
	})

	t.Run("no half-written files", func(t *testing.T) {
		var ids []int64
		err := filepath.WalkDir(recDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			require.False(t, strings.HasPrefix(d.Name(), ".tmp-"), "temporary file left: %s", path)
			if d.IsDir() && filepath.Dir(path) == recDir {
				id, err := strconv.ParseInt(d.Name(), 10, 64)
				require.NoError(t, err, path)
				ids = append(ids, id)
			}
			return nil
		})
		require.NoError(t, err)
		for _, id := range ids {
			code, _, _ := getBody(t, fmt.Sprintf("http://%s/api/v1/recordings/%d", srv2.http, id))
			require.Equal(t, http.StatusOK, code, "stored media of recording %d has no row", id)
		}
	})

	t.Run("publishes again", func(t *testing.T) {
		o := defaultPublish
		o.seconds = 30
		p := publish(t, ctx, "rtmp://"+srv2.rtmp+"/live/"+key, o)
		waitLiveAt(t, srv2.http, "alice")
		p.Stop()
	})
}

// onairProcess is a running `onair serve` child process.
type onairProcess struct {
	*testutil.Process
	rtmp, http string // bound addresses, from its start log line
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *onairProcess) kill() { p.Stop() }

var startedRe = regexp.MustCompile(`msg="onair started".* rtmp_addr=(\S+) http_addr=(\S+)`)

// startOnairProcess runs `onair serve` on loopback ports chosen by the kernel and waits
// for its start line.
func startOnairProcess(t *testing.T, ctx context.Context, bin, dir string) *onairProcess {
	t.Helper()
	p := testutil.Start(t, ctx, bin, "serve", "--data", dir, "--rtmp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := startedRe.FindStringSubmatch(p.Output()); m != nil {
			return &onairProcess{Process: p, rtmp: m[1], http: m[2]}
		}
		if p.Exited() {
			t.Fatalf("onair exited at start:\n%s", p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("onair did not start:\n%s", p.Output())
	return nil
}

// mustBuildOnair builds cmd/onair into a temporary directory.
func mustBuildOnair(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "onair")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/onair/onair/cmd/onair").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// runOnair runs a one-shot onair command on the data directory and returns its stdout.
func runOnair(bin, dir, stdin string, args ...string) (string, error) {
	cmd := exec.Command(bin, append(args, "--data", dir)...)
	cmd.Stdin = strings.NewReader(stdin)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, errOut.String())
	}
	return string(out), nil
}

// waitLiveAt polls the JSON API of the server at addr until the channel is listed.
func waitLiveAt(t *testing.T, addr, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var list []struct {
			Channel string `json:"channel"`
		}
		if getJSON("http://"+addr+"/api/v1/streams", &list) != nil {
			return false
		}
		for _, ls := range list {
			if ls.Channel == name {
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "channel %s never went live", name)
}

// mustLoginClient signs in through the API and returns a client holding the session cookie.
func mustLoginClient(t *testing.T, addr, user, password string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	res, err := c.Post("http://"+addr+"/api/v1/login", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	return c
}

// chatter sends chat messages and records which ones the room echoed back.
type chatter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	echoed []string
}

func startChatter(t *testing.T, ctx context.Context, c *http.Client, addr, channel string) *chatter {
	t.Helper()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/api/v1/channels/"+channel+"/chat", &websocket.DialOptions{HTTPClient: c})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	ch := &chatter{cancel: cancel}
	ch.wg.Add(2)
	go func() { // reader
		defer ch.wg.Done()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var f struct{ Type, Text string }
			if json.Unmarshal(b, &f) == nil && f.Type == "message" {
				ch.mu.Lock()
				ch.echoed = append(ch.echoed, f.Text)
				ch.mu.Unlock()
			}
		}
	}()
	go func() { // writer
		defer ch.wg.Done()
		defer ws.CloseNow() //nolint:errcheck // the server may be gone
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			msg := fmt.Sprintf(`{"type":"message","text":"before the crash %d"}`, i)
			if ws.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(ch.stop)
	return ch
}

func (ch *chatter) stop() {
	ch.cancel()
	ch.wg.Wait()
}

func (ch *chatter) acked() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.echoed)
}

func (ch *chatter) ackedTexts() []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]string(nil), ch.echoed...)
}

var segmentFileRe = regexp.MustCompile(`^seg-?\d+\.m4s$`)

// completeSegments lists the complete (renamed into place) segment files under dir.
func completeSegments(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() && segmentFileRe.MatchString(d.Name()) {
			out = append(out, d.Name())
		}
		return nil
	})
	require.NoError(t, err)
	return out
}
