package rtmp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/gortmplib"
)

// drainTimeout bounds how long a refused connection is read after its error status, so
// that the client reads the status before the close.
const drainTimeout = 2 * time.Second

// conn is one accepted TCP connection.
type conn struct {
	id     uint64
	nc     net.Conn
	remote string
	ip     netip.Addr
	guard  *chunkGuard
	stats  connStats

	// setup phase (see setup.go)
	setupUntil    time.Time // end of the handshake timeout; zero after publish/play
	connects      int
	warnedUnknown bool
}

// deadlineWriter sets the write deadline before every write of gortmplib, and counts
// the bytes written.
type deadlineWriter struct {
	s       *Server
	c       *conn
	timeout time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	if err := w.c.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.s.writeCounted(w.c, b)
}

// serveConn runs in the connection's own goroutine. The server's WaitGroup counts the
// connection (not the goroutine) until endConn: a player hands the connection over to
// fresh goroutines and lets this one, whose stack grew during the handshake, end.
func (s *Server) serveConn(c *conn) {
	defer s.recoverConn(c)
	err := s.handle(c)
	if errors.Is(err, errHandedOff) {
		return
	}
	s.endConn(c, err)
}

// endConn closes the connection, logs why it ended and releases its WaitGroup count.
func (s *Server) endConn(c *conn, err error) {
	c.nc.Close()
	s.untrack(c)
	s.logClosed(c, err)
	s.wg.Done()
}

// recoverConn ends the connection after a panic: a bug in a parser must not take the
// whole server down. Deferred by every goroutine that owns a connection.
func (s *Server) recoverConn(c *conn) {
	if r := recover(); r != nil {
		s.Logger.Error("connection panicked", "conn_id", c.id, "remote_addr", c.remote,
			"err", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.endConn(c, fmt.Errorf("panic: %v", r))
	}
}

// handle runs the connection to its end. It returns why the connection ended; rejected
// actions are logged where they are decided and return nil.
func (s *Server) handle(c *conn) error {
	c.guard = newChunkGuard(countingReader{s: s, c: c}, uint32(s.MaxMessageSize))
	c.guard.exact = true
	c.setupUntil = time.Now().Add(s.HandshakeTimeout)
	c.guard.before = func() { c.nc.SetReadDeadline(s.setupReadDeadline(c)) } //nolint:errcheck
	c.guard.captureTypes = 1 << msgTypeCommand
	c.guard.onMessage = func(_ uint8, body []byte) error { return s.checkCommand(c, body) }
	sc := &gortmplib.ServerConn{RW: struct {
		io.Reader
		io.Writer
	}{c.guard, deadlineWriter{s: s, c: c, timeout: s.WriteTimeout}}}

	if err := sc.Initialize(); err != nil {
		return sanitize(s.setupError(c, err))
	}
	c.stats.setFlashVer(sc.FlashVer)
	if err := sc.AcceptConn(); err != nil {
		return sanitize(s.setupError(c, err))
	}
	c.setupUntil = time.Time{}
	if sc.Publish {
		c.guard.exact = false
		return s.handlePublish(c, sc)
	}
	return s.handlePlay(c, sc)
}

// sanitize drops the details of gortmplib errors that print the connect command or the
// stream URL, which may hold the stream key.
func sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New("invalid stream url")
	}
	msg := err.Error()
	for _, prefix := range []string{"unexpected command", "invalid connect command"} {
		if strings.HasPrefix(msg, prefix) {
			return errors.New(prefix)
		}
	}
	return err
}

// lastPathElement returns the stream name of a publish/play URL: its last path element
// (gortmplib has already split the query off).
func lastPathElement(u *url.URL) string {
	if u == nil {
		return ""
	}
	p := u.Path
	return p[strings.LastIndexByte(p, '/')+1:]
}

// reject refuses the publish/play command with an error status, lets the client read it,
// and closes the connection.
func (c *conn) reject(sc *gortmplib.ServerConn) {
	if err := sc.RejectAction(); err != nil {
		return
	}
	c.drain()
}

// drain half-closes the connection and reads what the client still sends until it closes
// (or drainTimeout), so that the close does not reset what was written last.
func (c *conn) drain() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite() //nolint:errcheck
	}
	c.nc.SetReadDeadline(time.Now().Add(drainTimeout)) //nolint:errcheck
	var buf [512]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// logClosed logs the end of a connection: Warn for bad input, Debug for ordinary ends.
func (s *Server) logClosed(c *conn, err error) {
	if isOrdinaryEnd(err) || s.ctx.Err() != nil {
		s.Logger.Debug("connection closed", "conn_id", c.id, "remote_addr", c.remote, "err", err)
		return
	}
	s.Logger.Warn("connection closed", "conn_id", c.id, "remote_addr", c.remote, "err", err)
}

// isOrdinaryEnd reports whether err is a normal way for a connection to end (the peer or
// the server closed it), as opposed to bad input or a timeout.
func isOrdinaryEnd(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, errUnpublished),
		errors.Is(err, errEndedByServer),
		errors.Is(err, errPlayerClosed):
		return true
	}
	return false
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
