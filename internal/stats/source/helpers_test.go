package source_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/dash"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/stats/source"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Stream keys of the fake Authorize. A key must never show in any statistics.
var testKeys = map[string]string{
	"sk_alice_secret_0123456789": "alice",
	"sk_bob_secret_0123456789":   "bob",
}

func fakeAuthorize(_ context.Context, key onair.StreamKey) (string, error) {
	if c, ok := testKeys[key.Reveal()]; ok {
		return c, nil
	}
	return "", onair.Errorf(onair.ENOTFOUND, "Stream key not found.")
}

// env is the media side and the statistics, wired as app wires them.
type env struct {
	t     *testing.T
	hub   *hub.Registry
	rtmp  *rtmp.Server
	cmaf  *cmafstream.Manager
	hls   *hls.Server
	dash  *dash.Server
	stats *stats.Collector
	http  *httptest.Server
	logs  *testutil.LockedBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireFFmpeg(t)
	e := &env{t: t, logs: testutil.NewLockedBuffer()}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.hub = &hub.Registry{Logger: logger, GracePeriod: -1}
	require.NoError(t, e.hub.Start())
	e.rtmp = &rtmp.Server{Addr: "127.0.0.1:0", Hub: e.hub, Authorize: fakeAuthorize, Logger: logger}
	require.NoError(t, e.rtmp.Start())
	e.cmaf = &cmafstream.Manager{Hub: e.hub, Logger: logger}
	require.NoError(t, e.cmaf.Start())

	hlsSessions := &stats.Sessions{Protocol: stats.ProtoHLS, Logger: logger}
	dashSessions := &stats.Sessions{Protocol: stats.ProtoDASH, Logger: logger}
	e.stats = &stats.Collector{
		Source:   &source.Media{Hub: e.hub, RTMP: e.rtmp},
		HLS:      hlsSessions,
		DASH:     dashSessions,
		Version:  "test",
		Interval: 500 * time.Millisecond,
		Logger:   logger,
	}
	require.NoError(t, e.stats.Start())
	e.hls = &hls.Server{
		Hub: e.hub, CMAF: e.cmaf, PartTarget: e.cmaf.PartTarget, Logger: logger,
		Viewers: hlsSessions, OnRequest: e.stats.ObserveHLS, OnSegment: e.stats.ObserveTSSegment,
	}
	require.NoError(t, e.hls.Start())
	e.dash = &dash.Server{
		CMAF: e.cmaf, PartTarget: e.cmaf.PartTarget, SegmentTarget: e.cmaf.SegmentTarget, Logger: logger,
		Viewers: dashSessions, OnRequest: e.stats.ObserveDASH,
	}
	require.NoError(t, e.dash.Start())

	mux := http.NewServeMux()
	mux.Handle("/hls/", e.hls)
	mux.Handle("/dash/", e.dash)
	mux.Handle("GET /stat", &stats.StatHandler{Collector: e.stats})
	mux.Handle("GET /stat.xsl", stats.StatXSLHandler{})
	mux.Handle("GET /stat.js", stats.StatJSHandler{})
	mux.Handle("GET /metrics", e.stats.MetricsHandler())
	mux.Handle("GET /api/v1/stats", &stats.StatsHandler{Collector: e.stats})
	mux.Handle("GET /api/v1/stats/history", &stats.HistoryHandler{Collector: e.stats})
	mux.Handle("GET /api/v1/stats/streams/{name}/history", &stats.StreamHistoryHandler{Collector: e.stats})
	e.http = httptest.NewServer(mux)

	t.Cleanup(func() {
		e.rtmp.Close()
		e.hub.Close()
		e.hls.Close()
		e.dash.Close()
		e.cmaf.Close()
		e.http.Close()
		e.stats.Close()
		if t.Failed() {
			t.Logf("server log (tail):\n%s", tail(e.logs.String(), 8000))
		}
	})
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// publish pushes a live test picture and tone to channel with ffmpeg, until the test ends.
func (e *env) publish(channel string) *testutil.Process {
	e.t.Helper()
	key := ""
	for k, c := range testKeys {
		if c == channel {
			key = k
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re"}
	args = append(args, testutil.LavfiInput(true, true, "640x360", 30, 44100)...)
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", e.rtmp.Port(), key))
	p := testutil.Start(e.t, ctx, "ffmpeg", args...)
	require.Eventually(e.t, func() bool {
		st := e.hub.Stream(channel)
		return st != nil && st.Publishing()
	}, 15*time.Second, 20*time.Millisecond, "stream %s never went live: %s", channel, p.Output())
	return p
}

// play reads channel over RTMP with ffmpeg, until the test ends.
func (e *env) play(channel string) *testutil.Process {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	return testutil.Start(e.t, ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-i", fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", e.rtmp.Port(), channel), "-c", "copy", "-f", "null", "-")
}

func (e *env) get(path string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.http.URL + path)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b
}

// requireNoKey fails when a stream key shows in b.
func requireNoKey(t *testing.T, what string, b []byte) {
	t.Helper()
	for k := range testKeys {
		require.NotContains(t, string(b), k, "%s shows a stream key", what)
		require.NotContains(t, string(b), strings.TrimPrefix(k, "sk_"), "%s shows a stream key", what)
	}
}

// clientFrom returns an HTTP client whose connections come from the local address ip
// (any 127.0.0.0/8 address works on loopback), so that players look like distinct hosts.
func clientFrom(ip string) (*http.Client, *http.Transport) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, tr
}
