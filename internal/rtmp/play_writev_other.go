//go:build !linux

package rtmp

// Pooled players need raw writev calls: elsewhere every player writes from its own goroutine.
const rawWritevSupported = false

const maxIovecs = 1024

type iovecT struct{}

func iovec([]byte) iovecT { return iovecT{} }

func (sh *playShard) writevFD(uintptr) bool { return true }
func (sh *playShard) readFD(uintptr) bool   { return true }
