//go:build !linux

package thumb

import "os/exec"

// setProcessGroup keeps exec's default elsewhere: the process is killed when its context ends.
func setProcessGroup(cmd *exec.Cmd) {}
