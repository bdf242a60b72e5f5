//go:build linux

package transcode

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// TestChildDiesWithParent runs a transcoder in a child copy of the test binary, kills
// that process with SIGKILL, and checks that its ffmpeg child goes too. A working ffmpeg
// also ends by itself here, on the end of its input (the pipes close with their owner);
// PR_SET_PDEATHSIG is what ends one stuck elsewhere (a hardware encoder's init, say).
func TestChildDiesWithParent(t *testing.T) {
	if os.Getenv("ONAIR_TRANSCODE_PARENT") == "1" {
		runParent(t)
		return
	}
	testutil.RequireFFmpeg(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$")
	cmd.Env = append(os.Environ(), "ONAIR_TRANSCODE_PARENT=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	pid := 0
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FFMPEG_PID "); ok {
			pid, err = strconv.Atoi(v)
			require.NoError(t, err)
			break
		}
	}
	require.NotZero(t, pid, "the parent never started ffmpeg")
	require.NoError(t, syscall.Kill(pid, 0), "ffmpeg runs")

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		// Gone, or a zombie waiting for init to reap it: either way no longer running.
		return err != nil || strings.Contains(string(b), ") Z ")
	}, 10*time.Second, 50*time.Millisecond, "ffmpeg outlived its parent")
}

// runParent is the child copy: it transcodes and prints ffmpeg's pid, then waits to be killed.
func runParent(t *testing.T) {
	reg := startSource(t, "alice")
	m := &Manager{Hub: reg, Ladder: []Rung{{Name: "audio"}}, Preset: "ultrafast", Logger: testLogger()}
	require.NoError(t, m.Start())
	m.Transcode("alice")
	for {
		if st := m.Status(); len(st) == 1 && st[0].PID != 0 {
			fmt.Printf("FFMPEG_PID %d\n", st[0].PID)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {} // killed by the test
}
