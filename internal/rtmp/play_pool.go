package rtmp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Pooled players (WriteMergeWindow > 0 on Linux).
//
// A player needs no goroutine of its own to write: a few shard goroutines (one per
// CPU) wake once per merge window and, for each of their players, take what its hub
// reader queued and write it with one non-blocking writev. What the socket does not
// take stays pending (shared encodings, no copy) and is retried at the next tick; the
// hub reader is not drained meanwhile, so a slow player loses units there and is cut by
// checkDrops or after WriteTimeout without progress, exactly as a blocked writer was.
// The player's own goroutine only reads its socket (acknowledgements, pings,
// deleteStream): one goroutine per player, parked in the netpoller, instead of a
// writer and a reader woken for every batch.

// errPoked ends a pooled player's read loop when its shard ended the player.
var errPoked = errors.New("player ended by its writer")

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
	iov     []syscall.Iovec
	n       int // result of the last writev
	errno   syscall.Errno
	writeFn func(fd uintptr) bool
}

// playShardFor returns the shard that will write c's batches, or nil when players write
// from their own goroutine (no merge window, or a connection without a raw socket).
func (s *Server) playShardFor(c *conn) *playShard {
	if s.WriteMergeWindow <= 0 || !rawWritevSupported {
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
			sh.writeFn = sh.writevFD
			s.playShards[i] = sh
			s.wg.Add(1)
			go sh.run()
		}
	}
	s.nextShard++
	return s.playShards[s.nextShard%len(s.playShards)]
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

// tick serves every player once and forgets the detached ones.
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

// serve writes what p has pending and what its reader queued. It returns false once p
// is detached (the shard drops it).
func (sh *playShard) serve(p *player, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.detached {
		return false
	}
	if len(p.pending) > 0 {
		n, err := sh.writev(p, p.pending)
		p.pending = advance(p.pending, n)
		if err == nil && len(p.pending) > 0 && now.Sub(p.stalledSince) >= p.s.WriteTimeout {
			err = os.ErrDeadlineExceeded
		}
		if err != nil {
			p.finish(fmt.Errorf("write: %w", err))
			return false
		}
		if len(p.pending) > 0 {
			return p.checkDropsPooled()
		}
		p.pending = nil
	}
	bufs := sh.bufs[:0]
	media := false
	if p.pingWanted.Swap(false) {
		bufs = append(bufs, encodePing(uint32(now.UnixMilli())))
	}
	evs, rerr := p.r.TryReadBatch(sh.evs[:0])
	if len(evs) > 0 {
		media = true
		bufs = p.appendEvents(bufs, evs)
		clear(evs)
	}
	sh.evs = evs[:0]
	if len(bufs) > 0 {
		n, err := sh.writev(p, bufs)
		if err != nil {
			clear(bufs)
			p.finish(fmt.Errorf("write: %w", err))
			return false
		}
		if media {
			p.c.stats.active.Store(true)
			p.lastWrite.Store(now.UnixNano())
		}
		if rest := advance(bufs, n); len(rest) > 0 {
			// The socket is full: keep the rest (a copy of the slice headers only).
			p.pending = append(net.Buffers(nil), rest...)
			p.stalledSince = now
		}
		clear(bufs)
	}
	sh.bufs = bufs[:0]
	if rerr != nil {
		if len(p.pending) == 0 || !errors.Is(rerr, hub.ErrStreamEnded) {
			p.finish(rerr)
			return false
		}
		return true // the end is written once the pending bytes are
	}
	return p.checkDropsPooled()
}

func (p *player) checkDropsPooled() bool {
	if err := p.checkDrops(); err != nil {
		p.finish(err)
		return false
	}
	return true
}

// finish detaches p from its shard and wakes its goroutine, which ends the player with
// err. Called with p.mu held.
func (p *player) finish(err error) {
	p.detached = true
	p.endErr = err
	p.poke()
}

// poke makes the player's blocked socket read return at once (see readDeadline).
func (p *player) poke() {
	p.poked.Store(true)
	p.c.nc.SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck
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
	// The shard's raw writes must not see an expired deadline.
	if err := p.c.nc.SetWriteDeadline(time.Time{}); err != nil {
		return err
	}
	sh.add(p)
	return nil
}

// runPooled is the pooled player's goroutine: it reads the socket until the client or
// the shard ends the player, then writes the stream's end if it ended.
func (p *player) runPooled() error {
	err := p.readLoop()
	p.mu.Lock()
	p.detached = true
	if p.endErr != nil {
		err = p.endErr
	}
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	if errors.Is(err, hub.ErrStreamEnded) {
		err = nil
		p.bufs = pending
		if p.write() == nil {
			p.writeEnd()
		}
	}
	p.c.nc.Close()
	p.r.Close()
	if errors.Is(err, errPoked) {
		err = net.ErrClosed
	}
	return err
}
