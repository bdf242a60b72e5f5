package ffmpeg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Getenv(pdeathHelperEnv) != "" {
		runPdeathHelper()
	}
	os.Exit(m.Run())
}

// pdeathHelperEnv makes the test binary a parent that starts a child the way Frame
// starts ffmpeg, prints the child's pid and waits to be killed.
const pdeathHelperEnv = "ONAIR_FFMPEG_PDEATH_HELPER"

func runPdeathHelper() {
	cmd := exec.CommandContext(context.Background(), "sleep", "60")
	Isolate(cmd)
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(cmd.Process.Pid)
	select {} // until killed
}

// TestFrameBadInput: ffmpeg fails on garbage, with a clear error and no picture.
func TestFrameBadInput(t *testing.T) {
	testutil.RequireFFmpeg(t)
	path, err := exec.LookPath("ffmpeg")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Frame(ctx, path, "h264", bytes.NewReader([]byte{0, 0, 0, 1, 0x65, 0xff, 0xff}), 320, 1<<20)
	require.Error(t, err)
	require.Contains(t, err.Error(), "ffmpeg")
}

// TestFrameOutputLimit: a picture larger than maxBytes is an error, not a truncated JPEG.
func TestFrameOutputLimit(t *testing.T) {
	testutil.RequireFFmpeg(t)
	path, err := exec.LookPath("ffmpeg")
	require.NoError(t, err)
	ts, err := exec.Command(path, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=1",
		"-frames:v", "1", "-c:v", "libx264", "-f", "mpegts", "-").Output()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	img, err := Frame(ctx, path, "", bytes.NewReader(ts), 320, 1<<20)
	require.NoError(t, err)
	_, err = Frame(ctx, path, "", bytes.NewReader(ts), 320, len(img)/2)
	require.Error(t, err)
}
