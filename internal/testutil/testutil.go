// Package testutil holds helpers shared by tests: finding the real ffmpeg and Chromium,
// and running ffmpeg publishers. Tests never mock media: it comes from ffmpeg.
package testutil

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RequireFFmpeg skips the test when ffmpeg or ffprobe is missing, or fails it when
// ONAIR_REQUIRE_FFMPEG=1 (as in CI).
func RequireFFmpeg(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("ONAIR_REQUIRE_FFMPEG") == "1" {
				tb.Fatalf("%s not found on PATH and ONAIR_REQUIRE_FFMPEG=1", bin)
			}
			tb.Skipf("%s not found on PATH", bin)
		}
	}
}

// RequireBrowser returns the path of a Chromium binary. It skips the test when there is
// none, or fails it when ONAIR_REQUIRE_BROWSER=1 (as in CI).
func RequireBrowser(tb testing.TB) string {
	tb.Helper()
	for _, bin := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(bin); err == nil {
			return p
		}
	}
	if os.Getenv("ONAIR_REQUIRE_BROWSER") == "1" {
		tb.Fatal("chromium not found on PATH and ONAIR_REQUIRE_BROWSER=1")
	}
	tb.Skip("chromium not found on PATH")
	return ""
}

// LavfiInput returns ffmpeg input arguments for a synthetic test picture and tone.
// Set video or audio to false to leave that input out.
func LavfiInput(video, audio bool, size string, rate int, sampleRate int) []string {
	var args []string
	if video {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size="+size+":rate="+itoa(rate))
	}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+itoa(sampleRate))
	}
	return args
}

func itoa(n int) string { return strconv.Itoa(n) }

// Process is a running ffmpeg (or other) command whose output is kept for failures.
type Process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

// Start runs name with args until ctx ends or it exits. The test's cleanup kills it.
func Start(tb testing.TB, ctx context.Context, name string, args ...string) *Process {
	tb.Helper()
	return StartEnv(tb, ctx, nil, name, args...)
}

// StartEnv is Start with env (KEY=value) added to the test's environment.
func StartEnv(tb testing.TB, ctx context.Context, env []string, name string, args ...string) *Process {
	tb.Helper()
	p := &Process{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, name, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Stop()
	})
	return p
}

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Wait waits for the process to exit, up to timeout. It reports whether it exited, and its error.
func (p *Process) Wait(timeout time.Duration) (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LockedBuffer is a bytes.Buffer safe for concurrent writers, e.g. a test's log output.
type LockedBuffer = lockedBuffer

// NewLockedBuffer returns an empty LockedBuffer.
func NewLockedBuffer() *LockedBuffer { return &lockedBuffer{} }
