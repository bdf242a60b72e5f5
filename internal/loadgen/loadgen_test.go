package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// makeClip writes a 4 s FLV clip (720p-ish H.264, GOP 1 s, AAC) with ffmpeg.
func makeClip(t *testing.T) string {
	t.Helper()
	testutil.RequireFFmpeg(t)
	out := filepath.Join(t.TempDir(), "clip.flv")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	return out
}

type server struct {
	rtmpURL string
	http    string
}

// startServer runs a hub, RTMP (stream key "key{i}" publishes as "user{i}"), a CMAF
// manager and the HLS server behind an httptest server on 127.0.0.1.
func startServer(t *testing.T) *server {
	t.Helper()
	reg := &hub.Registry{Logger: discard, GracePeriod: time.Second}
	require.NoError(t, reg.Start())
	rs := &rtmp.Server{
		Addr: "127.0.0.1:0", Hub: reg, Logger: discard,
		Authorize: func(_ context.Context, key onair.StreamKey) (string, error) {
			if name, ok := strings.CutPrefix(key.Reveal(), "key"); ok {
				return "user" + name, nil
			}
			return "", onair.Errorf(onair.ENOTFOUND, "unknown key")
		},
	}
	require.NoError(t, rs.Start())
	cm := &cmafstream.Manager{Hub: reg, Logger: discard, SegmentTarget: time.Second}
	require.NoError(t, cm.Start())
	hs := &hls.Server{Hub: reg, CMAF: cm, PartTarget: cm.PartTarget, Logger: discard, SegmentDuration: time.Second}
	require.NoError(t, hs.Start())
	ts := httptest.NewServer(hs)
	t.Cleanup(func() {
		ts.Close()
		hs.Close()
		cm.Close()
		rs.Close()
		reg.Close()
	})
	return &server{rtmpURL: fmt.Sprintf("rtmp://127.0.0.1:%d/live", rs.Port()), http: ts.URL}
}

func TestRun(t *testing.T) {
	clip := makeClip(t)
	srv := startServer(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		MediaFile:        clip,
		PublishURLs:      []string{srv.rtmpURL + "/key{i}"},
		Publishers:       2,
		PlayNames:        []string{"user{i}"},
		HTTPBase:         srv.http,
		Players:          20,
		HLSViewers:       5,
		LLHLSViewers:     5,
		Duration:         9 * time.Second,
		StartDelay:       3 * time.Second,
		Ramp:             time.Second,
		ProgressInterval: 2 * time.Second,
	}, &progress)
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	t.Logf("progress:\n%s\n%s", progress.String(), table.String())
	require.Contains(t, progress.String(), "rtmp ")
	require.Len(t, rep.Clients, 32)
	for _, s := range rep.Summaries {
		require.Equal(t, s.Clients, s.KeptUp, "%s: not all kept up: %+v", s.Kind, s)
		require.Zero(t, s.Errors, s.Kind)
		switch s.Kind {
		case KindRTMP:
			require.Less(t, s.TTFFMaxMS, 500.0, "rtmp ttff")
		case KindHLS, KindLLHLS:
			require.Less(t, s.TTFFMaxMS, 3000.0, "%s ttff", s.Kind)
			require.Positive(t, s.LatencySamples, "%s latency samples", s.Kind)
		}
	}
	require.Len(t, rep.Summaries, 4)
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Len(t, back.Clients, 32)
	require.NotContains(t, js.String()+table.String()+progress.String(), "key0")
}

func TestConfigBounds(t *testing.T) {
	base := Config{MediaFile: "x.flv", PublishURLs: []string{"rtmp://127.0.0.1/live/k"}}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{"remote publish", func(c *Config) { c.PublishURLs = []string{"rtmp://192.0.2.1/live/k"} }, "loopback"},
		{"remote http", func(c *Config) { c.HTTPBase = "http://example.com" }, "loopback"},
		{"too many", func(c *Config) { c.PlayNames = []string{"a"}; c.Players = MaxClients }, "limit"},
		{"too long", func(c *Config) { c.Duration = 2 * time.Hour }, "duration"},
		{"no names", func(c *Config) { c.Players = 1 }, "play names"},
		{"template count", func(c *Config) { c.PublishURLs = []string{"rtmp://127.0.0.1/live/k{i}"}; c.Publishers = 0 }, "count"},
		{"no clients", func(c *Config) { c.PublishURLs = nil }, "no clients"},
		{"ok", func(c *Config) { c.PlayNames = []string{"a"}; c.Players = 3 }, ""},
		{"ok ipv6 localhost", func(c *Config) { c.PublishURLs = []string{"rtmp://[::1]:1935/live/k"} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			got, err := c.withDefaults()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "/live/k")
				return
			}
			require.NoError(t, err)
			require.Equal(t, DefaultDuration, got.Duration)
		})
	}
}

func TestParseMediaPlaylistLL(t *testing.T) {
	body := `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="ab-i0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
#EXTINF:2.000,
ab-7.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z
#EXT-X-PART:DURATION=0.20000,URI="ab-p10.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="ab-p11.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="ab-p12.m4s"
`
	p, err := parseMediaPlaylist(body)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, p.target)
	require.Equal(t, 200*time.Millisecond, p.partTarget)
	require.Equal(t, "ab-i0.mp4", p.mapURI)
	require.Len(t, p.segs, 2)
	require.Equal(t, uint64(7), p.segs[0].msn)
	require.Equal(t, uint64(8), p.segs[1].msn)
	require.Empty(t, p.segs[1].uri)
	require.Len(t, p.segs[1].parts, 2)
	require.True(t, p.segs[1].parts[0].independent)
	require.Equal(t, "ab-p11.m4s", p.segs[1].parts[1].uri)
	require.Equal(t, 2*time.Second, p.segs[1].wall.Sub(p.segs[0].wall))
}

func TestLoadClipErrors(t *testing.T) {
	_, err := parseFLV([]byte("not flv"))
	require.ErrorContains(t, err, "not an FLV")
	dir := t.TempDir()
	_, err = LoadClip(filepath.Join(dir, "missing.flv"))
	require.Error(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.flv"), []byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"), 0o600))
	_, err = LoadClip(filepath.Join(dir, "empty.flv"))
	require.ErrorContains(t, err, "fewer than 2")
}
