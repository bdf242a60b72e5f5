package app

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// TestBroadcastBecomesReplay publishes for a while, ends the broadcast and checks the
// replay through the API, the VOD playlist (ffprobe) and the MP4 download.
func TestBroadcastBecomesReplay(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := defaultPublish
	o.seconds = 8
	pub := publish(t, ctx, ts.rtmpURL("/live/"+key), o)
	waitLive(t, ts, "alice")
	exited, err := pub.Wait(30 * time.Second)
	require.True(t, exited)
	require.NoError(t, err, pub.Output())

	type rec struct {
		ID       int64   `json:"id"`
		Status   string  `json:"status"`
		Duration float64 `json:"duration"`
		Playlist string  `json:"playlist"`
		Download string  `json:"download"`
	}
	var list []rec
	require.Eventually(t, func() bool {
		list = nil
		return getJSON(ts.httpURL("/api/v1/channels/alice/recordings"), &list) == nil &&
			len(list) == 1 && list[0].Status == "finished"
	}, 30*time.Second, 250*time.Millisecond, "no finished recording")
	r := list[0]
	require.InDelta(t, 8, r.Duration, 2.5)

	code, body, _ := getBody(t, ts.httpURL(fmt.Sprintf("/vod/%d/index.m3u8", r.ID)))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "#EXT-X-PLAYLIST-TYPE:VOD")
	require.Contains(t, body, "#EXT-X-ENDLIST")
	require.NotContains(t, body, key)

	// A poster is made from the first frame once the recording is finished.
	require.Eventually(t, func() bool {
		code, body, h := getBody(t, ts.httpURL(fmt.Sprintf("/vod/%d/poster.jpg", r.ID)))
		return code == http.StatusOK && h.Get("Content-Type") == "image/jpeg" && strings.HasPrefix(body, "\xff\xd8")
	}, 15*time.Second, 200*time.Millisecond, "no poster")

	for _, path := range []string{fmt.Sprintf("/vod/%d/index.m3u8", r.ID), fmt.Sprintf("/vod/%d/download.mp4", r.ID)} {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", ts.httpURL(path)).Output()
		require.NoError(t, err, path)
		d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err, path)
		require.InDelta(t, 8, d, 2.5, path) // within one segment of what was published
	}
}
