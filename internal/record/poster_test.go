package record

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/record/recordtest"
)

func TestRecorderPoster(t *testing.T) {
	tests := []struct {
		name   string
		ffmpeg string
		want   bool
	}{
		{name: "ffmpeg", want: true},
		{name: "no ffmpeg", ffmpeg: "onair-no-such-ffmpeg", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEnv(t, envOptions{recorder: func(r *Recorder) { r.FFmpeg = tt.ffmpeg }})
			mustChannel(t, e.db, "alice", "", true)
			m := recordtest.MustMedia(t, recordtest.Options{Seconds: 3, Size: "640x360"})
			p, err := e.hub.Publish("alice", m.Tracks)
			require.NoError(t, err)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.Close()
				_ = recordtest.Publish(context.Background(), p, m, 5)
			}()
			wg.Wait()
			rec := e.waitRecording(t, "alice")
			if !tt.want {
				e.rec.Close() // waits for the poster goroutine, if any
				_, err := e.local.Stat(t.Context(), rec.ID, PosterName)
				require.ErrorIs(t, err, ErrNotFound)
				return
			}
			require.Eventually(t, func() bool {
				_, err := e.local.Stat(t.Context(), rec.ID, PosterName)
				return err == nil
			}, 15*time.Second, 20*time.Millisecond)
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width",
				"-of", "csv=p=0", e.path(rec.ID, PosterName)).CombinedOutput()
			require.NoError(t, err, "ffprobe: %s", out)
			require.Equal(t, "mjpeg,320", strings.TrimSpace(string(out)))
			b, err := os.ReadFile(e.path(rec.ID, PosterName))
			require.NoError(t, err)
			require.True(t, len(b) > 2 && b[0] == 0xFF && b[1] == 0xD8, "JPEG magic")
		})
	}
}

func TestHasVideo(t *testing.T) {
	require.False(t, hasVideo(initMeta{Tracks: []trackMeta{{Codec: "mp4a.40.2"}}}))
	require.True(t, hasVideo(initMeta{Tracks: []trackMeta{{Codec: "mp4a.40.2"}, {Video: true}}}))
}
