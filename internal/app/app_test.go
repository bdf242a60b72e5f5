package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a real onair on loopback ports with its log captured.
type testServer struct {
	*Server
	dir string
	log *testutil.LockedBuffer
}

func (ts *testServer) httpURL(path string) string {
	return "http://" + ts.HTTPAddr().String() + path
}

func (ts *testServer) rtmpURL(path string) string {
	return "rtmp://" + ts.RTMPAddr().String() + path
}

func mustStartServer(t *testing.T, edit func(*config.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.Data = dir
	c.RTMPAddr = "127.0.0.1:0"
	c.HTTPAddr = "127.0.0.1:0"
	c.GracePeriod = config.Duration(3 * time.Second)
	c.ShutdownTimeout = config.Duration(3 * time.Second)
	if edit != nil {
		edit(&c)
	}
	require.NoError(t, c.Validate())
	buf := testutil.NewLockedBuffer()
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(buf, testLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &Server{Config: c, Logger: logger}
	require.NoError(t, s.Open(context.Background()))
	t.Cleanup(s.Close)
	return &testServer{Server: s, dir: dir, log: buf}
}

// testLogWriter forwards logs to the test log when -v is given.
func testLogWriter(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// mustCreateUser creates a user through the CLI (beside the running server, as a person
// would) and returns the stream key printed on the last line.
func mustCreateUser(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	var out, errOut strings.Builder
	m := &Main{Stdin: strings.NewReader("correct horse battery\n"), Stdout: &out, Stderr: &errOut}
	code := m.Run(context.Background(), []string{"user", "create", name, "--data", ts.dir, "--db", ts.Config.DB, "--password-stdin"})
	require.Equal(t, 0, code, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	key := lines[len(lines)-1]
	require.Regexp(t, `^[A-Za-z0-9_-]{26,}$`, key)
	return key
}

type publishOpts struct {
	video, audio bool
	extra        []string // encoder arguments
	seconds      int
}

var defaultPublish = publishOpts{
	video: true, audio: true, seconds: 60,
	extra: []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"},
}

// publish runs ffmpeg pushing a synthetic picture and tone at real-time pace.
func publish(t *testing.T, ctx context.Context, url string, o publishOpts) *testutil.Process {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-re"}
	args = append(args, testutil.LavfiInput(o.video, o.audio, "320x180", 30, 44100)...)
	args = append(args, o.extra...)
	args = append(args, "-t", strconv.Itoa(o.seconds), "-f", "flv", url)
	return testutil.Start(t, ctx, "ffmpeg", args...)
}

// waitLive polls the JSON API until the channel is listed.
func waitLive(t *testing.T, ts *testServer, name string) onair.LiveStream {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var list []onair.LiveStream
		if getJSON(ts.httpURL("/api/v1/streams"), &list) == nil {
			for _, ls := range list {
				if ls.Channel == name {
					return ls
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("channel %s never went live", name)
	return onair.LiveStream{}
}

func getJSON(url string, v any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func getBody(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b), res.Header
}

type probeStream struct {
	CodecName  string `json:"codec_name"`
	CodecType  string `json:"codec_type"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// ffprobe returns the streams ffprobe finds at url.
func ffprobe(t *testing.T, url string) []probeStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "15000000",
		"-show_streams", "-of", "json", url).Output()
	require.NoError(t, err, "ffprobe %s", url)
	var res struct {
		Streams []probeStream `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	return res.Streams
}

func codecs(ss []probeStream) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.CodecType+":"+s.CodecName)
	}
	return out
}

// Media playlists under /hls/{name}/: the MPEG-TS one and the LL-HLS (fMP4) one.
const (
	tsPlaylist   = "ts/index.m3u8"
	fmp4Playlist = "stream.m3u8"
)

// waitPlaylist waits until the TS media playlist has at least n segments and returns it.
func waitPlaylist(t *testing.T, ts *testServer, name string, n int) string {
	t.Helper()
	return waitMediaPlaylist(t, ts, name, tsPlaylist, n)
}

// waitMediaPlaylist waits until /hls/{name}/{path} has at least n segments and returns it.
func waitMediaPlaylist(t *testing.T, ts *testServer, name, path string, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res, err := http.Get(ts.httpURL("/hls/" + name + "/" + path))
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			last = string(b)
			if res.StatusCode == http.StatusOK && strings.Count(last, "#EXTINF") >= n {
				return last
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("playlist of %s never had %d segments; last:\n%s", name, n, last)
	return ""
}

func mediaSequence(t *testing.T, playlist string) int {
	t.Helper()
	m := regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`).FindStringSubmatch(playlist)
	require.NotNil(t, m, playlist)
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestPublishPlayHLSAndRTMP(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)

	ls := waitLive(t, ts, "alice")
	playlist := waitPlaylist(t, ts, "alice", 2)

	t.Run("api", func(t *testing.T) {
		require.Equal(t, "h264", ls.VideoCodec)
		require.Equal(t, "aac", ls.AudioCodec)
		require.Equal(t, 320, ls.Width)
		require.Equal(t, 180, ls.Height)
		require.WithinDuration(t, time.Now(), ls.StartedAt, time.Minute)
		// Rates are measured over a window: wait for one.
		require.Eventually(t, func() bool {
			var one onair.LiveStream
			return getJSON(ts.httpURL("/api/v1/streams/alice"), &one) == nil && one.FPS > 25 && one.FPS < 35 && one.BitrateKbps > 10
		}, 10*time.Second, 200*time.Millisecond)
	})

	t.Run("hls", func(t *testing.T) {
		// The entry point: a multivariant playlist leading to the LL-HLS (fMP4) rendition.
		require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.httpURL("/hls/alice/index.m3u8"))))
		code, body, h := getBody(t, ts.httpURL("/hls/alice/index.m3u8"))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "application/vnd.apple.mpegurl", h.Get("Content-Type"))
		require.Contains(t, h.Get("Cache-Control"), "no-cache")
		require.Contains(t, body, "#EXT-X-STREAM-INF:")
		require.Contains(t, body, `CODECS="avc1.`)
		require.Contains(t, body, "RESOLUTION=320x180")
		ll := waitMediaPlaylist(t, ts, "alice", fmp4Playlist, 2)
		for _, tag := range []string{"#EXT-X-MAP:", "#EXT-X-PART-INF:PART-TARGET=", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:"} {
			require.Contains(t, ll, tag)
		}

		// The MPEG-TS rendition for old devices.
		require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.httpURL("/hls/alice/"+tsPlaylist))))
		seg := regexp.MustCompile(`(?m)^[^#\s].*\.ts$`).FindString(playlist)
		require.NotEmpty(t, seg)
		code, body, h = getBody(t, ts.httpURL("/hls/alice/ts/"+seg))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "video/mp2t", h.Get("Content-Type"))
		require.Contains(t, h.Get("Cache-Control"), "immutable")
		require.Equal(t, byte(0x47), body[0])
		code, _, _ = getBody(t, ts.httpURL("/hls/alice/ts/nope.ts"))
		require.Equal(t, http.StatusNotFound, code)
		code, _, _ = getBody(t, ts.httpURL("/hls/nobody/index.m3u8"))
		require.Equal(t, http.StatusNotFound, code)
	})

	t.Run("dash", func(t *testing.T) {
		require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.httpURL("/dash/alice/index.mpd"))))
	})

	t.Run("rtmp", func(t *testing.T) {
		require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.rtmpURL("/live/alice"))))
	})

	t.Run("pages", func(t *testing.T) {
		code, body, _ := getBody(t, ts.httpURL("/"))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "/@alice")
		code, body, _ = getBody(t, ts.httpURL("/@alice"))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "/hls/alice/index.m3u8")
		code, _, _ = getBody(t, ts.httpURL("/healthz"))
		require.Equal(t, http.StatusOK, code)
	})

	t.Run("key never shown", func(t *testing.T) {
		_, pl, _ := getBody(t, ts.httpURL("/hls/alice/index.m3u8"))
		_, ll, _ := getBody(t, ts.httpURL("/hls/alice/"+fmp4Playlist))
		_, tsl, _ := getBody(t, ts.httpURL("/hls/alice/"+tsPlaylist))
		_, mpd, _ := getBody(t, ts.httpURL("/dash/alice/index.mpd"))
		_, streams, _ := getBody(t, ts.httpURL("/api/v1/streams"))
		_, page, _ := getBody(t, ts.httpURL("/@alice"))
		_, home, _ := getBody(t, ts.httpURL("/"))
		for _, s := range []string{pl, ll, tsl, mpd, streams, page, home, ts.log.String()} {
			require.NotContains(t, s, key)
		}
	})

	require.False(t, pub.Exited(), pub.Output())
}

func TestWrongKeyRefused(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, nil)
	mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wrong := "live_thisisnotthekeyofanyone0000"
	start := time.Now()
	pub := publish(t, ctx, ts.rtmpURL("/live/"+wrong), defaultPublish)
	exited, err := pub.Wait(10 * time.Second)
	require.True(t, exited, "ffmpeg still publishing with a wrong key")
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Nil(t, ts.Hub().Stream("alice"))
	require.NotContains(t, ts.log.String(), wrong)
}

func TestDuplicatePublisherRefused(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")
	before := mediaSequence(t, waitPlaylist(t, ts, "alice", 1))

	second := publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	exited, err := second.Wait(10 * time.Second)
	require.True(t, exited, "second publisher was accepted")
	require.Error(t, err)

	// The first publisher goes on: the playlist keeps moving.
	require.Eventually(t, func() bool {
		_, pl, _ := getBody(t, ts.httpURL("/hls/alice/"+tsPlaylist))
		return strings.Contains(pl, "#EXT-X-MEDIA-SEQUENCE") && mediaSequence(t, pl) >= before+2
	}, 20*time.Second, 250*time.Millisecond)
	require.False(t, first.Exited(), first.Output())
	require.NotContains(t, ts.log.String(), key)
}

func TestReconnectKeepsPlaylist(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, func(c *config.Config) { c.GracePeriod = config.Duration(10 * time.Second) })
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")
	pl := waitPlaylist(t, ts, "alice", 3)
	waitMediaPlaylist(t, ts, "alice", fmp4Playlist, 1) // the fMP4 segmenter starts on demand
	seqBefore := mediaSequence(t, pl)
	first.Stop()

	time.Sleep(time.Second)
	require.NotNil(t, ts.Hub().Stream("alice"), "stream ended inside the grace window")
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	// Both renditions continue across the join, marked by a discontinuity.
	for _, path := range []string{tsPlaylist, fmp4Playlist} {
		require.Eventually(t, func() bool {
			_, pl, _ := getBody(t, ts.httpURL("/hls/alice/"+path))
			i := strings.Index(pl, "#EXT-X-DISCONTINUITY\n")
			return i >= 0 && strings.Count(pl[i:], "#EXTINF") >= 2
		}, 30*time.Second, 250*time.Millisecond, path)
	}
	_, pl, _ = getBody(t, ts.httpURL("/hls/alice/"+tsPlaylist))
	require.GreaterOrEqual(t, mediaSequence(t, pl), seqBefore)
	require.NotContains(t, pl, "#EXT-X-ENDLIST")
}

func TestPublishVariants(t *testing.T) {
	testutil.RequireFFmpeg(t)
	cases := []struct {
		name  string
		opts  publishOpts
		want  []string
		check func(t *testing.T, ss []probeStream)
	}{
		{
			name: "audio only",
			opts: publishOpts{audio: true, extra: []string{"-c:a", "aac"}},
			want: []string{"audio:aac"},
		},
		{
			name: "video only",
			opts: publishOpts{video: true, extra: []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p"}},
			want: []string{"video:h264"},
		},
		{
			name: "mp3 mono 44.1 kHz baseline",
			opts: publishOpts{video: true, audio: true, extra: []string{"-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "libmp3lame", "-ar", "44100", "-ac", "1"}},
			want: []string{"video:h264", "audio:mp3"},
			check: func(t *testing.T, ss []probeStream) {
				for _, s := range ss {
					if s.CodecType == "audio" {
						require.Equal(t, "44100", s.SampleRate)
						require.Equal(t, 1, s.Channels)
					}
				}
			},
		},
		{
			name: "aac mono 44.1 kHz",
			opts: publishOpts{video: true, audio: true, extra: []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100", "-ac", "1"}},
			want: []string{"video:h264", "audio:aac"},
			check: func(t *testing.T, ss []probeStream) {
				for _, s := range ss {
					if s.CodecType == "audio" {
						require.Equal(t, "44100", s.SampleRate)
						require.Equal(t, 1, s.Channels)
					}
				}
			},
		},
		{
			name: "b-frames",
			opts: publishOpts{video: true, audio: true, extra: []string{"-c:v", "libx264", "-profile:v", "high", "-bf", "3", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"}},
			want: []string{"video:h264", "audio:aac"},
		},
		{
			name: "x264 default gop 250",
			opts: publishOpts{video: true, audio: true, extra: []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"}},
			want: []string{"video:h264", "audio:aac"},
		},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			ts := mustStartServer(t, nil)
			key := mustCreateUser(t, ts, "alice")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ca.opts.seconds = 40
			pub := publish(t, ctx, ts.rtmpURL("/live/"+key), ca.opts)
			waitLive(t, ts, "alice")
			waitPlaylist(t, ts, "alice", 1)
			hlsStreams := ffprobe(t, ts.httpURL("/hls/alice/index.m3u8"))
			require.ElementsMatch(t, ca.want, codecs(hlsStreams))
			rtmpStreams := ffprobe(t, ts.rtmpURL("/live/alice"))
			require.ElementsMatch(t, ca.want, codecs(rtmpStreams))
			if ca.check != nil {
				ca.check(t, hlsStreams)
				ca.check(t, rtmpStreams)
			}
			require.False(t, pub.Exited(), pub.Output())
		})
	}
}

func TestCLIUserKeys(t *testing.T) {
	dir := t.TempDir()
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errOut strings.Builder
		m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
		code := m.Run(context.Background(), append(args, "--data", dir))
		return code, out.String(), errOut.String()
	}
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}
	code, out, errOut := run("hunter2hunter2\n", "user", "create", "alice", "--email", "alice@example.org", "--password-stdin")
	require.Equal(t, 0, code, errOut)
	key := lastLine(out)

	code, out, _ = run("", "user", "key", "alice")
	require.Equal(t, 0, code)
	require.Equal(t, key, lastLine(out))

	code, out, _ = run("", "user", "reset-key", "alice")
	require.Equal(t, 0, code)
	require.NotEqual(t, key, lastLine(out))

	code, _, errOut = run("hunter2hunter2\n", "user", "create", "alice", "--password-stdin")
	require.Equal(t, 1, code)
	require.NotEmpty(t, errOut)

	code, _, errOut = run("short\n", "user", "create", "bob", "--password-stdin")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "assword")

	code, _, errOut = run("", "user", "create", "carol")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--password-stdin")

	code, _, _ = run("", "user", "key", "nobody")
	require.Equal(t, 1, code)

	code, out, _ = run("", "migrate")
	require.Equal(t, 0, code)
	require.Contains(t, out, "up to date")
	_, err := os.Stat(filepath.Join(dir, "onair.db"))
	require.NoError(t, err)
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte("rtmp_addr = \":1936\"\nhttp_addr = \":8081\"\ndata = \"from-file\"\ngrace_period = \"5s\"\n"), 0o600))
	m := &Main{Stderr: io.Discard, Environ: []string{"ONAIR_HTTP_ADDR=:8082", "ONAIR_DATA=from-env", "PATH=/bin"}}
	fs, cfg := m.newFlagSet("serve")
	require.NoError(t, fs.Parse([]string{"--config", file, "--data", "from-flag"}))
	c, err := m.loadConfig(fs, *cfg)
	require.NoError(t, err)
	require.Equal(t, ":1936", c.RTMPAddr) // file over default
	require.Equal(t, ":8082", c.HTTPAddr) // env over file
	require.Equal(t, "from-flag", c.Data) // flag over env
	require.Equal(t, 5*time.Second, c.GracePeriod.D())
	require.Equal(t, "sqlite:from-flag/onair.db", c.DB)

	m.Environ = []string{"ONAIR_GRACE_PERIOD=soon", "ONAIR_LOG_LEVEL=loud"}
	fs, cfg = m.newFlagSet("serve")
	require.NoError(t, fs.Parse(nil))
	_, err = m.loadConfig(fs, *cfg)
	require.ErrorContains(t, err, "ONAIR_GRACE_PERIOD")
	m.Environ = []string{"ONAIR_LOG_LEVEL=loud", "ONAIR_HTTP_ADDR=nope"}
	_, err = m.loadConfig(fs, *cfg)
	require.ErrorContains(t, err, "log_level")
	require.ErrorContains(t, err, "http_addr")
}

// TestShutdownEndsPlayers checks graceful shutdown: the RTMP player gets end of stream.
func TestShutdownEndsPlayers(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")
	player := testutil.Start(t, ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", ts.rtmpURL("/live/alice"), "-c", "copy", "-f", "null", "-")
	time.Sleep(2 * time.Second)
	require.False(t, player.Exited(), player.Output())
	ts.Close()
	exited, _ := player.Wait(10 * time.Second)
	require.True(t, exited, "player still running after shutdown")
	exited, _ = pub.Wait(10 * time.Second)
	require.True(t, exited, "publisher still connected after shutdown")
}

// TestServeOnOtherDatabases runs the server and the CLI on PostgreSQL and MariaDB.
func TestServeOnOtherDatabases(t *testing.T) {
	testutil.RequireFFmpeg(t)
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"postgres", testutil.NewPostgresDSN},
		{"mysql", testutil.NewMySQLDSN},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			ts := mustStartServer(t, func(c *config.Config) { c.DB = dsn })
			key := mustCreateUser(t, ts, "alice")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
			waitLive(t, ts, "alice")
			var ch struct {
				Username string `json:"username"`
				Live     bool   `json:"live"`
			}
			require.Eventually(t, func() bool {
				return getJSON(ts.httpURL("/api/v1/channels/alice"), &ch) == nil && ch.Live
			}, 10*time.Second, 100*time.Millisecond)
			require.Equal(t, "alice", ch.Username)
			require.NotContains(t, ts.log.String(), key)
		})
	}
}

func TestRTMPURLShownToBroadcasters(t *testing.T) {
	ts := mustStartServer(t, nil)
	r, err := http.NewRequest(http.MethodGet, "http://media.example.org:8080/dashboard", nil)
	require.NoError(t, err)
	port := ts.RTMPAddr().(*net.TCPAddr).Port
	require.Equal(t, fmt.Sprintf("rtmp://media.example.org:%d/live", port), ts.rtmpURLFor(r))

	require.Empty(t, ts.web.RTMPSURL(r), "no RTMPS")

	ts2 := mustStartServer(t, func(c *config.Config) { c.PublicRTMPURL = "rtmp://live.example.org/live/" })
	require.Equal(t, "rtmp://live.example.org/live", ts2.web.RTMPURL(r))

	// With RTMPS, its URL too: on the request's host, or public_rtmp_url's.
	tls, _ := mustStartTLSServer(t, true)
	tlsPort := tls.RTMPSAddr().(*net.TCPAddr).Port
	require.Equal(t, fmt.Sprintf("rtmps://media.example.org:%d/live", tlsPort), tls.web.RTMPSURL(r))
	tls.Config.PublicRTMPURL = "rtmp://live.example.org/live/"
	require.Equal(t, fmt.Sprintf("rtmps://live.example.org:%d/live", tlsPort), tls.web.RTMPSURL(r))
	tls.Config.PublicRTMPURL = "rtmps://live.example.org/live"
	require.Empty(t, tls.web.RTMPSURL(r), "public_rtmp_url is RTMPS already")
}

// TestOpenFailsCleanly checks that a server that cannot listen reports it and leaves
// nothing running (goleak checks the goroutines at the end of the package).
func TestOpenFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c := config.Default()
	c.Data = t.TempDir()
	c.RTMPAddr = "127.0.0.1:0"
	c.HTTPAddr = ln.Addr().String() // taken
	require.NoError(t, c.Validate())
	s := &Server{Config: c, Logger: slog.New(slog.DiscardHandler)}
	require.ErrorContains(t, s.Open(context.Background()), "listen http")
	s.Close()
}
