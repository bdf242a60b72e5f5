//go:build !linux

package transcode

import (
	"os/exec"
	"time"
)

// setProcAttr does nothing outside Linux: there is no PR_SET_PDEATHSIG.
func setProcAttr(*exec.Cmd) {}

// killGroup kills the child.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// cpuTime is not measured outside Linux.
func cpuTime(int) (time.Duration, bool) { return 0, false }
