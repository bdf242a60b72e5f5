package thumb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/unit"
)

// maxThumbBytes bounds what ffmpeg may write back.
const maxThumbBytes = 2 << 20

// decode runs ffmpeg on one Annex-B access unit and returns the decoded picture as a JPEG,
// width pixels wide. ffmpeg runs in its own process group, which is killed as a whole
// when ctx ends.
func decode(ctx context.Context, ffmpeg string, codec unit.Codec, au []byte, width int) ([]byte, error) {
	format := "h264"
	if codec == unit.CodecH265 {
		format = "hevc"
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", format, "-i", "pipe:0", "-an", "-frames:v", "1",
		"-vf", "scale="+strconv.Itoa(width)+":-2", "-f", "image2", "-c:v", "mjpeg", "-q:v", "5", "pipe:1")
	cmd.Stdin = bytes.NewReader(au)
	var out, stderr bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: maxThumbBytes}
	cmd.Stderr = &limitWriter{w: &stderr, n: 4 << 10}
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ffmpeg: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	b := out.Bytes()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return nil, errors.New("ffmpeg wrote no picture")
	}
	return b, nil
}

// limitWriter keeps at most n bytes and fails past them (ffmpeg then gets EPIPE).
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, errors.New("output too large")
	}
	l.n -= len(p)
	return l.w.Write(p)
}
