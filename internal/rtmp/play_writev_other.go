//go:build !linux

package rtmp

import "syscall"

// Pooled players need raw writev calls: elsewhere every player writes from its own goroutine.
const rawWritevSupported = false

const maxIovecs = 1024

func iovec([]byte) syscall.Iovec { return syscall.Iovec{} }

func (sh *playShard) writevFD(uintptr) bool { return true }
func (sh *playShard) readFD(uintptr) bool   { return true }
