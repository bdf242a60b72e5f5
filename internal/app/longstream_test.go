package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/loadgen"
	"github.com/onair/onair/internal/testutil"
)

// TestLongStreamTimestamps publishes with the load generator's Go publisher, its
// timestamps starting 3 s before RTMP's extended timestamp boundary (0xFFFFFF ms) and
// 3 s before the 32-bit wrap (2^32 ms, 49.7 days): RTMP play, HLS and the recording go
// on across it in one session, with monotonic timestamps and no discontinuity.
func TestLongStreamTimestamps(t *testing.T) {
	testutil.RequireFFmpeg(t)
	clip := filepath.Join(t.TempDir(), "clip.flv")
	args := append([]string{"-hide_banner", "-loglevel", "error"}, testutil.LavfiInput(true, true, "320x180", 30, 44100)...)
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-t", "4", "-f", "flv", clip)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)

	const publishFor = 9 * time.Second
	for _, tc := range []struct {
		name   string
		offset time.Duration
	}{
		{"extended timestamp boundary", 0xFFFFFF*time.Millisecond - 3*time.Second},
		{"32-bit wrap", (1<<32)*time.Millisecond - 3*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := mustStartServer(t, nil)
			key := mustCreateUser(t, ts, "alice")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pubDone := make(chan *loadgen.Report, 1)
			go func() {
				rep, err := loadgen.Run(ctx, loadgen.Config{
					MediaFile:        clip,
					PublishURLs:      []string{ts.rtmpURL("/live/" + key)},
					Duration:         publishFor,
					ProgressInterval: -1,
					TimestampOffset:  tc.offset,
				}, nil)
				if err != nil {
					t.Errorf("loadgen: %v", err)
				}
				pubDone <- rep
			}()
			waitLive(t, ts, "alice")

			// RTMP play until the publisher ends: video timestamps keep increasing by a frame.
			u, err := url.Parse(ts.rtmpURL("/live/alice"))
			require.NoError(t, err)
			player := &gortmplib.Client{URL: u}
			ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
			defer icancel()
			require.NoError(t, player.Initialize(ictx))
			defer player.Close()
			var dts []time.Duration
			var playlist string
			player.NetConn().SetReadDeadline(time.Now().Add(publishFor + 10*time.Second)) //nolint:errcheck
			for {
				msg, err := player.Read()
				if err != nil {
					break // the stream ended (or the deadline)
				}
				if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
					dts = append(dts, v.DTS)
				}
				if playlist == "" && len(dts) > 0 && dts[len(dts)-1]-dts[0] > 5*time.Second {
					// past the boundary (3 s in): the live HLS playlist
					playlist = waitPlaylist(t, ts, "alice", 2)
				}
			}
			rep := <-pubDone
			require.NotNil(t, rep)
			require.Empty(t, rep.Clients[0].Err, "publisher failed")

			require.Greater(t, len(dts), 150, "too few frames played")
			maxGap := time.Duration(0)
			for i := 1; i < len(dts); i++ {
				gap := dts[i] - dts[i-1]
				require.Positive(t, gap, "video dts not increasing at frame %d: %v after %v", i, dts[i], dts[i-1])
				maxGap = max(maxGap, gap)
			}
			t.Logf("played %d frames over %v, largest dts step %v", len(dts), dts[len(dts)-1]-dts[0], maxGap)
			require.Less(t, maxGap, 150*time.Millisecond, "a jump in the played timestamps")

			// HLS: segments across the boundary, no discontinuity.
			require.NotEmpty(t, playlist, "no HLS playlist while live")
			require.NotContains(t, playlist, "#EXT-X-DISCONTINUITY\n")

			// One session from start to end: no restart, one recording without a gap.
			logs := ts.log.String()
			require.Equal(t, 1, strings.Count(logs, `msg="publish started"`), "publish started more than once")
			require.NotContains(t, logs, "publish session restarted")
			require.NotContains(t, logs, "timestamp went backwards")
			type rec struct {
				ID       int64   `json:"id"`
				Status   string  `json:"status"`
				Duration float64 `json:"duration"`
			}
			var list []rec
			require.Eventually(t, func() bool {
				list = nil
				return getJSON(ts.httpURL("/api/v1/channels/alice/recordings"), &list) == nil &&
					len(list) == 1 && list[0].Status == "finished"
			}, 30*time.Second, 250*time.Millisecond, "no single finished recording")
			require.InDelta(t, publishFor.Seconds(), list[0].Duration, 2.5)
			code, body, _ := getBody(t, ts.httpURL(fmt.Sprintf("/vod/%d/index.m3u8", list[0].ID)))
			require.Equal(t, http.StatusOK, code)
			require.NotContains(t, body, "#EXT-X-DISCONTINUITY\n")
		})
	}
}
