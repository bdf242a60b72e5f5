package rtmp

import (
	"syscall"
	"unsafe"
)

// rawWritevSupported tells whether pooled players can be written with raw writev calls.
const rawWritevSupported = true

// maxIovecs is IOV_MAX on Linux.
const maxIovecs = 1024

type iovecT = syscall.Iovec

func iovec(b []byte) iovecT {
	v := syscall.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return v
}

// writevFD is the shard's syscall.RawConn write callback: one writev of sh.iov that
// never waits for the socket (EAGAIN is left to the caller).
func (sh *playShard) writevFD(fd uintptr) bool {
	return sh.syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&sh.iov[0])), uintptr(len(sh.iov)))
}

// readFD is the shard's syscall.RawConn read callback: one read into sh.rbuf that never
// waits for the socket.
func (sh *playShard) readFD(fd uintptr) bool {
	return sh.syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&sh.rbuf[0])), uintptr(len(sh.rbuf)))
}

// syscall makes one system call and keeps its result in sh.n and sh.errno.
func (sh *playShard) syscall(trap, fd, buf, n uintptr) bool {
	r, _, e := syscall.Syscall(trap, fd, buf, n)
	if e != 0 {
		sh.n, sh.errno = 0, e
	} else {
		sh.n = int(r)
	}
	return true
}
