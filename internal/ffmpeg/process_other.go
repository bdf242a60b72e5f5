//go:build !linux

package ffmpeg

import "os/exec"

// Isolate keeps exec's default elsewhere: the process is killed when its context ends.
func Isolate(cmd *exec.Cmd) {}
