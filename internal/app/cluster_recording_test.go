package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/testutil"
)

// TestClusterRecordings runs nodes a and b on one PostgreSQL database, NATS and S3
// bucket. While a records a broadcast, b restarts: its repair leaves a's running
// recording alone. Then a dies (SIGKILL): b, the survivor, finishes a's recording from
// the shared storage.
func TestClusterRecordings(t *testing.T) {
	testutil.RequireFFmpeg(t)
	testutil.NATSURL(t)
	fake := testutil.StartFakeS3(t)
	bin := buildOnair(t)
	c := newTestCluster(t, bin, testutil.NewPostgresDSN(t))
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, "\n[recordings_s3]\nendpoint = %q\nbucket = %q\naccess_key = %q\nsecret_key = %q\nprefix = \"rec\"\n",
		fake.Endpoint, fake.Bucket, fake.AccessKey, fake.SecretKey)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	key := c.createUser("alice")
	a, b := c.start("a"), c.start("b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := publish(t, ctx, a.rtmpURL("/live/"+key), defaultPublish)

	type rec struct {
		ID       int64   `json:"id"`
		Status   string  `json:"status"`
		Duration float64 `json:"duration"`
	}
	recordings := func(n *clusterNodeProc) []rec {
		var list []rec
		if getJSON(n.httpURL("/api/v1/channels/alice/recordings"), &list) != nil {
			return nil
		}
		return list
	}
	var id int64
	require.Eventually(t, func() bool {
		list := recordings(b)
		if len(list) != 1 || list[0].Status != onair.RecordingActive {
			return false
		}
		id = list[0].ID
		return true
	}, 30*time.Second, 200*time.Millisecond, "no active recording; a: %s; publisher: %s", a.proc.Output(), pub.Output())
	// Let a store a few segments.
	st, err := record.NewS3Storage(record.S3Config{Endpoint: fake.Endpoint, Bucket: fake.Bucket, Prefix: "rec"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pl, err := record.ReadAll(t.Context(), st, id, record.PlaylistName)
		return err == nil && strings.Count(string(pl), "#EXTINF") >= 2
	}, 30*time.Second, 200*time.Millisecond, "no segments in the bucket")

	b.proc.Stop()
	b = c.start("b")
	list := recordings(b)
	require.Len(t, list, 1)
	require.Equal(t, onair.RecordingActive, list[0].Status, "b's restart finished a's running recording")
	require.False(t, pub.Exited(), "publisher: %s", pub.Output())

	a.proc.Stop() // kill -9
	require.Eventually(t, func() bool {
		list := recordings(b)
		return len(list) == 1 && list[0].Status == onair.RecordingFinished && list[0].Duration > 0
	}, 30*time.Second, 250*time.Millisecond, "the dead node's recording was not finished; b: %s", b.proc.Output())
	require.Contains(t, b.proc.Output(), "recordings of a dead node repaired")
	res, err := http.Get(b.httpURL(fmt.Sprintf("/vod/%d/index.m3u8", id)))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
		b.httpURL(fmt.Sprintf("/vod/%d/index.m3u8", id))).Output()
	require.NoError(t, err)
	require.NotEmpty(t, strings.TrimSpace(string(out)))
}
