package record

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/record/recordtest"
)

func TestBuildMP4(t *testing.T) {
	e := mustEnv(t, envOptions{grace: 10 * time.Second})
	mustChannel(t, e.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 6})
	// Two sessions: the MP4 spans the reconnect.
	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	e.waitActive(t, "alice")
	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	require.True(t, e.hub.End("alice"))
	rec := e.waitRecording(t, "alice")

	mp4, err := BuildMP4(t.Context(), e.local, rec.ID)
	require.NoError(t, err)
	require.False(t, mp4.Partial())
	// The MP4 keeps the gap of the reconnect (the hub resumes 100 ms after the last
	// unit) so that the tracks stay in sync; the playlist's durations leave it out.
	const gap = 0.3
	require.InDelta(t, rec.Duration.Seconds(), mp4.Duration().Seconds(), gap)

	var full bytes.Buffer
	n, err := io.Copy(&full, mp4.NewReader(t.Context()))
	require.NoError(t, err)
	require.Equal(t, mp4.Size(), n)
	require.Less(t, mp4.Size(), rec.Bytes, "a remux, not a re-encode")
	path := filepath.Join(t.TempDir(), "download.mp4")
	require.NoError(t, os.WriteFile(path, full.Bytes(), 0o600))

	require.Equal(t, []string{"h264,video", "aac,audio"}, ffprobeStreams(t, path))
	probed := ffprobeDuration(t, path)
	require.InDelta(t, (2 * m.Length).Seconds(), probed.Seconds(), oneSegment.Seconds())
	require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), gap)
	ffmpegDecode(t, "-i", path)

	// Any range reads the same bytes as the whole file.
	r := mp4.NewReader(t.Context())
	for _, off := range []int64{0, 7, int64(len(mp4.header)) - 3, int64(len(mp4.header)) + 5, mp4.Size() / 2, mp4.Size() - 10} {
		_, err := r.Seek(off, io.SeekStart)
		require.NoError(t, err)
		got := make([]byte, 4000)
		k, err := io.ReadFull(r, got)
		if off+4000 > mp4.Size() {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, full.Bytes()[off:off+int64(k)], got[:k], "offset %d", off)
	}
	pos, err := r.Seek(-1, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, mp4.Size()-1, pos)
	_, err = r.Seek(-1, io.SeekStart)
	require.Error(t, err)
}
