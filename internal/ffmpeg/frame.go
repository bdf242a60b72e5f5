// Package ffmpeg runs the ffmpeg binary for short jobs: one picture from some media (live
// thumbnails, recording posters), in a process that never outlives onair.
package ffmpeg

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
)

// Frame runs the ffmpeg at path on in and returns its first video frame as a JPEG, width
// pixels wide. format is ffmpeg's input format ("h264", "hevc"), or "" to let ffmpeg
// probe. ffmpeg may write at most maxBytes; it is isolated (Isolate) and killed as a
// group when ctx ends.
func Frame(ctx context.Context, path, format string, in io.Reader, width, maxBytes int) ([]byte, error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin"}
	if format != "" {
		args = append(args, "-f", format)
	}
	args = append(args, "-i", "pipe:0", "-an", "-frames:v", "1",
		"-vf", "scale="+strconv.Itoa(width)+":-2", "-f", "image2", "-c:v", "mjpeg", "-q:v", "5", "pipe:1")
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = in
	var out, stderr bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: maxBytes}
	cmd.Stderr = &limitWriter{w: &stderr, n: 4 << 10}
	cmd.WaitDelay = time.Second
	Isolate(cmd)
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
