package ffmpeg

import (
	"os/exec"
	"syscall"
)

// Isolate runs cmd, made with exec.CommandContext, in its own process group, killed as a
// group when its context ends, and asks the kernel to kill it when onair dies (even on
// kill -9), so that no ffmpeg outlives us.
func Isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
