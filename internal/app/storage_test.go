package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/record"
	"github.com/onair/onair/internal/testutil"
)

// TestReplayFromS3 records a broadcast into an S3 bucket (an S3-protocol server in the
// test), then serves the replay from a second server that shares only the database and
// the bucket: any node serves any replay.
func TestReplayFromS3(t *testing.T) {
	testutil.RequireFFmpeg(t)
	fake := testutil.StartFakeS3(t)
	withS3 := func(c *config.Config) {
		c.RecordingsS3 = config.RecordingsS3{
			Endpoint: fake.Endpoint, Bucket: fake.Bucket,
			AccessKey: fake.AccessKey, SecretKey: fake.SecretKey, Prefix: "site/recordings",
		}
	}
	a := mustStartServer(t, withS3)
	key := mustCreateUser(t, a, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := defaultPublish
	o.seconds = 6
	pub := publish(t, ctx, a.rtmpURL("/live/"+key), o)
	waitLive(t, a, "alice")
	exited, err := pub.Wait(30 * time.Second)
	require.True(t, exited)
	require.NoError(t, err, pub.Output())

	var list []struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	require.Eventually(t, func() bool {
		list = nil
		return getJSON(a.httpURL("/api/v1/channels/alice/recordings"), &list) == nil &&
			len(list) == 1 && list[0].Status == "finished"
	}, 30*time.Second, 250*time.Millisecond, "no finished recording")
	id := list[0].ID

	// The media is in the bucket, under the prefix, and not on the local disk.
	st, err := record.NewS3Storage(record.S3Config{Endpoint: fake.Endpoint, Bucket: fake.Bucket, Prefix: "site/recordings"})
	require.NoError(t, err)
	objs, err := st.List(t.Context(), id)
	require.NoError(t, err)
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	require.Contains(t, names, record.PlaylistName)
	require.Contains(t, names, record.ManifestName)
	require.Contains(t, names, "seg-0.m4s")
	_, err = os.Stat(filepath.Join(a.dir, "recordings"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NotContains(t, a.log.String(), fake.SecretKey)
	require.Contains(t, a.log.String(), "recordings stored in s3")

	// A second node with its own data directory, the same database and bucket.
	dsn := a.Config.DB
	a.Close()
	b := mustStartServer(t, func(c *config.Config) {
		withS3(c)
		c.DB = dsn
	})
	playlist := b.httpURL(fmt.Sprintf("/vod/%d/index.m3u8", id))
	code, body, _ := getBody(t, playlist)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "#EXT-X-ENDLIST")
	for _, path := range []string{playlist, b.httpURL(fmt.Sprintf("/vod/%d/download.mp4", id))} {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
		require.NoError(t, err, path)
		d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err, path)
		require.InDelta(t, 6, d, 2.5, path)
	}

	// A Range request on a segment is answered from a ranged read of the object.
	req, err := http.NewRequest(http.MethodGet, b.httpURL(fmt.Sprintf("/vod/%d/seg-0.m4s", id)), nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=4-7")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	seg, err := record.ReadAll(t.Context(), st, id, "seg-0.m4s")
	require.NoError(t, err)
	require.Equal(t, seg[4:8], got)
	require.Contains(t, []string{"styp", "moof"}, string(got), "bytes 4-7 of a CMAF segment are its first box type")
}

// TestS3StorageRefusedAtStart checks that a wrong bucket fails the start clearly.
func TestS3StorageRefusedAtStart(t *testing.T) {
	fake := testutil.StartFakeS3(t)
	c := config.Default()
	c.Data = t.TempDir()
	c.RTMPAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.RecordingsS3 = config.RecordingsS3{Endpoint: fake.Endpoint, Bucket: "nope", AccessKey: "a", SecretKey: "very-secret"}
	require.NoError(t, c.Validate())
	s := &Server{Config: c, Logger: slog.New(slog.DiscardHandler)}
	err := s.Open(context.Background())
	require.ErrorContains(t, err, "bucket nope does not exist")
	require.NotContains(t, err.Error(), "very-secret")
}
