package rtmp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Pooled players (WriteMergeWindow > 0 on Linux).
//
// A pooled player has no goroutine of its own. A few shard goroutines (one per CPU) wake
// once per merge window and serve each of their players in turn, without ever blocking:
// read what the client sent (acknowledgements, pings, deleteStream) with a non-blocking
// read through the chunk guard, then take what the player's hub reader queued and write
// it with one non-blocking writev. What the socket does not take (shared encodings, no
// copy) is written by a short-lived goroutine that blocks until the client has read it
// (or WriteTimeout), while the shard skips the player; the hub reader is not drained
// meanwhile, so a slow player loses units there and is cut by checkDrops or by the
// write timeout, exactly as a blocked writer was. A client silent for
// ReadTimeout while nothing was written to it is pinged, and closed when it stays silent.
// At the stream's end the shard writes StreamEOF and the status messages, half-closes,
// and waits (up to drainTimeout) for the client to close.

// playShard writes the batches of its players.
type playShard struct {
	s     *Server
	mu    sync.Mutex
	added []*player     // players handed over since the last tick
	wake  chan struct{} // signalled by add when the shard was idle

	// owned by the shard goroutine
	players []*player
	evs     []hub.Event
	bufs    net.Buffers
	iov     []iovecT
	n       int // result of the last writev
	errno   syscall.Errno
	writeFn func(fd uintptr) bool
	readFn  func(fd uintptr) bool
	rbuf    []byte // read buffer shared by the shard's players
}

// playShardFor returns the shard that will write c's batches, or nil when players write
// from their own goroutine (no merge window, or a connection without a raw socket).
func (s *Server) playShardFor(c *conn, mergeWindow time.Duration) *playShard {
	if mergeWindow <= 0 || !rawWritevSupported {
		return nil
	}
	if _, ok := c.nc.(syscall.Conn); !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.playShards == nil {
		s.playShards = make([]*playShard, runtime.GOMAXPROCS(0))
		for i := range s.playShards {
			sh := &playShard{s: s, wake: make(chan struct{}, 1)}
			sh.init()
			s.playShards[i] = sh
			s.wg.Add(1)
			go sh.run()
		}
	}
	s.nextShard++
	return s.playShards[s.nextShard%len(s.playShards)]
}

func (sh *playShard) init() {
	sh.writeFn = sh.writevFD
	sh.readFn = sh.readFD
	sh.rbuf = make([]byte, playerReadBufSize)
}

func (sh *playShard) add(p *player) {
	sh.mu.Lock()
	sh.added = append(sh.added, p)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// run ticks every merge window while the shard has players.
func (sh *playShard) run() {
	defer sh.s.wg.Done()
	defer sh.closeAll()
	t := time.NewTicker(sh.s.WriteMergeWindow)
	defer t.Stop()
	for {
		if len(sh.players) == 0 {
			sh.mu.Lock()
			idle := len(sh.added) == 0
			sh.mu.Unlock()
			if idle {
				t.Stop()
				select {
				case <-sh.wake:
				case <-sh.s.ctx.Done():
					return
				}
				t.Reset(sh.s.WriteMergeWindow)
			}
		}
		select {
		case <-t.C:
		case <-sh.s.ctx.Done():
			return
		}
		sh.tick()
	}
}

// closeAll ends every player when the server closes.
func (sh *playShard) closeAll() {
	sh.mu.Lock()
	sh.players = append(sh.players, sh.added...)
	sh.added = nil
	sh.mu.Unlock()
	for _, p := range sh.players {
		p.close(net.ErrClosed)
	}
	sh.players = nil
}

// tick serves every player once and forgets the ended ones.
func (sh *playShard) tick() {
	sh.mu.Lock()
	sh.players = append(sh.players, sh.added...)
	clear(sh.added)
	sh.added = sh.added[:0]
	sh.mu.Unlock()
	now := sh.s.Now()
	kept := sh.players[:0]
	for _, p := range sh.players {
		if sh.serve(p, now) {
			kept = append(kept, p)
		}
	}
	clear(sh.players[len(kept):])
	sh.players = kept
	if cap(sh.bufs) > playerKeepEvents {
		sh.bufs = nil
	}
	if cap(sh.evs) > 4*playerKeepEvents {
		sh.evs = nil
	}
}

// serve reads from and writes to p once. It returns false once p has ended (closed).
func (sh *playShard) serve(p *player, now time.Time) (keep bool) {
	defer func() {
		if r := recover(); r != nil {
			p.s.Logger.Error("connection panicked", "conn_id", p.c.id, "remote_addr", p.c.remote,
				"err", fmt.Sprint(r), "stack", string(debug.Stack()))
			p.close(fmt.Errorf("panic: %v", r))
			keep = false
		}
	}()
	if err := sh.read(p, now); err != nil {
		if p.draining && isOrdinaryEnd(err) {
			err = nil // the client closed after the stream's end, as asked
		}
		p.close(err)
		return false
	}
	if p.flushing.Load() {
		return true // a flush goroutine owns the player
	}
	if p.flushErr != nil {
		p.close(fmt.Errorf("write: %w", p.flushErr))
		return false
	}
	if p.ending {
		return p.drain(now)
	}
	if !p.pingAt.IsZero() && now.Sub(p.pingAt) >= p.s.ReadTimeout {
		p.close(errPlayerSilent)
		return false
	}
	bufs := sh.bufs[:0]
	if p.needPing(now) {
		bufs = append(bufs, encodePing(uint32(now.UnixMilli())))
	}
	evs, rerr := p.r.TryReadBatch(sh.evs[:0])
	media := len(evs) > 0
	if media {
		bufs = p.appendEvents(bufs, evs)
		clear(evs)
	}
	sh.evs = evs[:0]
	if errors.Is(rerr, hub.ErrStreamEnded) {
		bufs = append(bufs, endMessages()...)
		p.ending = true
		rerr = nil
	}
	if len(bufs) > 0 {
		n, err := sh.writev(p, bufs)
		if err != nil {
			clear(bufs)
			p.close(fmt.Errorf("write: %w", err))
			return false
		}
		if media {
			p.c.stats.active.Store(true)
			p.lastWrite.Store(now.UnixNano())
		}
		if rest := advance(bufs, n); len(rest) > 0 {
			// The socket is full: a goroutine writes the rest (a copy of the slice
			// headers only) as the client reads, and hands the player back.
			p.flush(append(net.Buffers(nil), rest...))
		}
		clear(bufs)
	}
	sh.bufs = bufs[:0]
	if rerr != nil {
		p.close(rerr)
		return false
	}
	if p.ending && !p.flushing.Load() {
		return p.drain(now)
	}
	return p.checkDropsPooled()
}

// flush writes pending from a goroutine of its own, blocking up to WriteTimeout each
// write, while the shard leaves the player alone. Once pending is written, it writes what
// the hub reader queued meanwhile too, until nothing is queued: a player that fell a
// socket buffer behind catches up at the speed of its connection, instead of by one
// socket buffer per tick (which capped 3000 players at ~70 % of real time). A player
// that keeps up never needs one.
func (p *player) flush(pending net.Buffers) {
	p.flushing.Store(true)
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		var err error
		for len(pending) > 0 {
			if err = p.c.nc.SetWriteDeadline(time.Now().Add(p.s.WriteTimeout)); err != nil {
				break
			}
			var n int64
			n, err = pending.WriteTo(p.c.nc)
			p.s.countWrite(p.c, int(n))
			p.r.Stream().AddBytesOut(int(n))
			if err != nil {
				break
			}
			if err = p.checkDrops(); err != nil {
				break
			}
			// The stream's end (an error here, and again for the shard) is the shard's.
			evs, rerr := p.r.TryReadBatch(nil)
			if rerr != nil || len(evs) == 0 {
				break
			}
			pending = p.appendEvents(nil, evs)
			p.lastWrite.Store(p.s.Now().UnixNano())
		}
		if err == nil {
			err = p.c.nc.SetWriteDeadline(time.Time{})
		}
		p.flushErr = err
		p.flushing.Store(false)
	}()
}

// read feeds what the client sent to the chunk guard, without blocking.
func (sh *playShard) read(p *player, now time.Time) error {
	for range 4 { // a few reads per tick are plenty for acknowledgements and commands
		sh.n, sh.errno = 0, 0
		if err := p.rc.Read(sh.readFn); err != nil {
			return err
		}
		switch {
		case sh.errno == syscall.EAGAIN || sh.errno == syscall.EINTR:
			return nil
		case sh.errno != 0:
			return sh.errno
		case sh.n == 0:
			return io.EOF
		}
		p.s.countRead(p.c, sh.n)
		p.lastRead = now
		p.pingAt = time.Time{}
		if err := p.c.guard.feed(sh.rbuf[:sh.n]); err != nil {
			return err
		}
		if sh.n < len(sh.rbuf) {
			return nil
		}
	}
	return nil
}

// needPing tells whether to ping p now: nothing was read from it nor written to it for
// ReadTimeout. (serve closes a player that stays silent for another ReadTimeout.)
func (p *player) needPing(now time.Time) bool {
	last := max(p.lastRead.UnixNano(), p.lastWrite.Load())
	if !p.pingAt.IsZero() {
		return false
	}
	if now.UnixNano()-last >= int64(p.s.ReadTimeout) {
		p.pingAt = now
		return true
	}
	return false
}

func (p *player) checkDropsPooled() bool {
	if err := p.checkDrops(); err != nil {
		p.close(err)
		return false
	}
	return true
}

// drain half-closes an ended player once its last bytes are written, then waits for the
// client to close (read sees EOF) or for drainTimeout.
func (p *player) drain(now time.Time) bool {
	if !p.draining {
		p.draining = true
		p.drainUntil = now.Add(drainTimeout)
		if tc, ok := p.c.nc.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite() //nolint:errcheck
		}
	}
	if now.After(p.drainUntil) {
		p.close(nil)
		return false
	}
	return true
}

// close ends a pooled player: it closes the socket, detaches the hub reader and ends the
// connection with err.
func (p *player) close(err error) {
	p.c.nc.Close()
	p.r.Close()
	p.logEnd(err)
	p.s.endConn(p.c, err)
}

// writev writes bufs to p's socket without blocking and counts what was written.
func (sh *playShard) writev(p *player, bufs net.Buffers) (int, error) {
	iov := sh.iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		iov = append(iov, iovec(b))
	}
	sh.iov = iov
	if len(iov) == 0 {
		return 0, nil
	}
	sh.n, sh.errno = 0, 0
	err := p.rc.Write(sh.writeFn)
	clear(iov)
	if err != nil {
		return 0, err
	}
	n := sh.n
	switch sh.errno {
	case 0:
	case syscall.EAGAIN, syscall.EINTR:
		n = 0
	default:
		return 0, sh.errno
	}
	p.s.countWrite(p.c, n)
	p.r.Stream().AddBytesOut(n)
	return n, nil
}

// advance drops the first n bytes of bufs.
func advance(bufs net.Buffers, n int) net.Buffers {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// startPooled writes the player's first batch (tracks and the cached GOP) at once from
// the handshake goroutine, blocking, then hands the player to its shard.
func (p *player) startPooled(sh *playShard) error {
	rc, err := p.c.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	p.rc = rc
	evs, _ := p.r.TryReadBatch(nil)
	p.bufs = p.appendEvents(nil, evs)
	err = p.write()
	p.bufs = nil
	if err != nil {
		return err
	}
	// The shard's raw reads and writes must not meet an expired deadline.
	if err := p.c.nc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	g := p.c.guard
	g.exact = false
	g.captureTypes = 1 << msgTypeCommand
	g.onMessage = playerCommand
	g.before = nil
	p.lastRead = p.s.Now()
	sh.add(p)
	return nil
}

// endMessages tell a player the stream ended: StreamEOF, UnpublishNotify and Play.Stop.
func endMessages() net.Buffers {
	return net.Buffers{encodeStreamEOF(),
		encodeStatus("NetStream.Play.UnpublishNotify", "stream ended"),
		encodeStatus("NetStream.Play.Stop", "stream ended")}
}
