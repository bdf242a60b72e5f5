package app

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/testutil"
)

// transcodeConfig turns a light ladder on: the 320x180 test source gets 144p and audio only.
func transcodeConfig(c *config.Config) {
	c.Transcode.Enabled = true
	c.Transcode.Preset = "ultrafast"
	c.Transcode.Ladder = []config.Rung{{Name: "144p", Height: 144}, {Name: "360p", Height: 360}, {Name: "audio"}}
}

// waitMultivariant waits until the multivariant playlist of name has n variants.
func waitMultivariant(t *testing.T, ts *testServer, name string, n int) []string {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		status, body, _ := getBody(t, ts.httpURL("/hls/"+name+"/index.m3u8"))
		last = body
		if status == 200 && strings.Count(body, "#EXT-X-STREAM-INF:") >= n {
			return strings.Split(strings.TrimSpace(body), "\n")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("multivariant playlist of %s never had %d variants:\n%s", name, n, last)
	return nil
}

func TestTranscodeLadder(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, transcodeConfig)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "alice")

	lines := waitMultivariant(t, ts, "alice", 3)
	require.Len(t, lines, 2+3*2, strings.Join(lines, "\n"))
	require.True(t, strings.HasPrefix(lines[3], "stream.m3u8?s="), lines[3])
	require.True(t, strings.HasPrefix(lines[5], "144p/stream.m3u8?s="), lines[5])
	require.True(t, strings.HasPrefix(lines[7], "audio/stream.m3u8?s="), lines[7])
	require.Contains(t, lines[2], `RESOLUTION=320x180`)
	require.Contains(t, lines[2], `CODECS="avc1.`)
	require.Contains(t, lines[4], `RESOLUTION=256x144`)
	require.Contains(t, lines[4], `,mp4a.40.2"`)
	require.Contains(t, lines[6], `CODECS="mp4a.40.2"`)
	require.NotContains(t, lines[6], "RESOLUTION")

	// ffprobe reads every rendition at its size.
	probe := func(path string) []probeStream { return ffprobe(t, ts.httpURL("/hls/alice/"+path)) }
	sizes := func(ss []probeStream) (out []string) {
		for _, s := range ss {
			if s.CodecType == "video" {
				out = append(out, strconv.Itoa(s.Width)+"x"+strconv.Itoa(s.Height))
			} else {
				out = append(out, s.CodecType+":"+s.CodecName)
			}
		}
		return out
	}
	require.ElementsMatch(t, []string{"320x180", "audio:aac"}, sizes(probe("stream.m3u8")))
	require.ElementsMatch(t, []string{"256x144", "audio:aac"}, sizes(probe("144p/stream.m3u8")))
	require.ElementsMatch(t, []string{"audio:aac"}, sizes(probe("audio/stream.m3u8")))

	// DASH lists the 144p video beside the source's.
	_, mpd, _ := getBody(t, ts.httpURL("/dash/alice/index.mpd"))
	require.Contains(t, mpd, `<Representation id="144p"`)
	require.Contains(t, mpd, `width="256" height="144"`)

	// The renditions are not channels of their own.
	var list []onair.LiveStream
	require.NoError(t, getJSON(ts.httpURL("/api/v1/streams"), &list))
	require.Len(t, list, 1)
	require.Equal(t, "alice", list[0].Channel)

	// The admin page's state: one transcoder, its CPU measured.
	st := ts.transcodeStatus()
	require.True(t, st.Enabled)
	require.True(t, st.Available)
	require.Len(t, st.Transcoders, 1)
	require.Equal(t, []string{"144p", "audio"}, st.Transcoders[0].Renditions)
	require.NotZero(t, st.Transcoders[0].PID)
	require.GreaterOrEqual(t, st.Transcoders[0].CPUPercent, 0.0)

	// The stream ending stops the transcoder; its child is gone.
	pid := st.Transcoders[0].PID
	ts.Hub().End("alice")
	require.Eventually(t, func() bool { return len(ts.transcodeStatus().Transcoders) == 0 }, 15*time.Second, 100*time.Millisecond)
	require.NoFileExists(t, filepath.Join("/proc", strconv.Itoa(pid)), "the ffmpeg child is gone")
}

func TestTranscodeChannelOff(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, transcodeConfig)
	key := mustCreateUser(t, ts, "bob")
	bob, err := ts.users.FindUserByUsername(context.Background(), "bob")
	require.NoError(t, err)
	_, err = ts.channels.UpdateChannel(context.Background(), bob, onair.ChannelUpdate{Transcode: new(false)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, ts.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, ts, "bob")
	waitMediaPlaylist(t, ts, "bob", fmp4Playlist, 2)
	_, body, _ := getBody(t, ts.httpURL("/hls/bob/index.m3u8"))
	require.Equal(t, 1, strings.Count(body, "#EXT-X-STREAM-INF:"), body)
	require.Empty(t, ts.transcodeStatus().Transcoders)
}

func TestTranscodeWithoutFFmpeg(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		testutil.RequireFFmpeg(t) // skips, or fails in CI
	}
	t.Setenv("PATH", t.TempDir()) // no ffmpeg for onair
	ts := mustStartServer(t, transcodeConfig)
	require.Contains(t, ts.log.String(), "ffmpeg not found: transcoding is off, streams are passthrough only")
	require.Equal(t, 1, strings.Count(ts.log.String(), "transcoding is off"), "said once")
	st := ts.transcodeStatus()
	require.True(t, st.Enabled)
	require.False(t, st.Available)

	key := mustCreateUser(t, ts, "carol")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := []string{"-hide_banner", "-loglevel", "error", "-re"}
	args = append(args, testutil.LavfiInput(true, true, "320x180", 30, 44100)...)
	args = append(args, defaultPublish.extra...)
	args = append(args, "-t", "30", "-f", "flv", ts.rtmpURL("/live/"+key))
	testutil.Start(t, ctx, ffmpeg, args...)
	waitLive(t, ts, "carol")
	waitMediaPlaylist(t, ts, "carol", fmp4Playlist, 1)
	_, body, _ := getBody(t, ts.httpURL("/hls/carol/index.m3u8"))
	require.Equal(t, 1, strings.Count(body, "#EXT-X-STREAM-INF:"), "passthrough only:\n%s", body)
	require.Empty(t, ts.transcodeStatus().Transcoders)
}
