package rtmp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// Per-player buffers above these capacities are released after a write, so that an
// idle player keeps only small ones.
const (
	playerKeepEvents  = 32
	playerReadBufSize = 256
)

// handlePlay attaches a player to a live stream.
func (s *Server) handlePlay(c *conn, sc *gortmplib.ServerConn) error {
	name := lastPathElement(sc.URL)
	var r *hub.Reader
	var err error
	if st := s.playStream(sc.URL, name); st == nil {
		err = errStreamNotFound
	} else if r, err = st.AddReader(playerKind(sc.URL)); err != nil {
		err = errStreamNotFound
	}
	if err != nil {
		s.Logger.Debug("play rejected", "conn_id", c.id, "remote_addr", c.remote, "channel", name, "err", err)
		c.reject(sc)
		return nil
	}
	if err := sc.AcceptAction(); err != nil {
		r.Close()
		return err
	}
	// From here on gortmplib's ServerConn is dropped: the player's bytes are written raw,
	// and its socket is read through the chunk guard alone (the guard ran in exact mode,
	// so no byte after the play command sits in gortmplib's buffer).
	p := &player{s: s, c: c, r: r, name: name, started: s.Now()}
	// A cluster edge relays to its own viewers: merging its writes would add up to a
	// merge window of latency to every one of them, for one connection's worth of syscalls.
	p.mergeWindow = s.WriteMergeWindow
	if playerKind(sc.URL) == RelayApp {
		p.mergeWindow = 0
	}
	p.encode = p.encodeUnit
	c.stats.reader.Store(r)
	c.stats.setState(ConnPlaying, name)
	s.Logger.Debug("play started", "conn_id", c.id, "remote_addr", c.remote, "channel", name)
	if sh := s.playShardFor(c, p.mergeWindow); sh != nil {
		// The shard ends the connection.
		if err := p.startPooled(sh); err != nil {
			r.Close()
			return err
		}
		return errHandedOff
	}
	p.readerDone = make(chan struct{})
	// The player runs on a fresh (small) goroutine; it ends the connection.
	go func() {
		defer s.recoverConn(c)
		err := p.run()
		p.logEnd(err)
		s.endConn(c, err)
	}()
	return errHandedOff
}

func (p *player) logEnd(err error) {
	p.s.Logger.Debug("play ended", "conn_id", p.c.id, "remote_addr", p.c.remote, "channel", p.name,
		"duration", p.s.Now().Sub(p.started).Round(time.Millisecond), "bytes", p.c.stats.bytesOut.Load(),
		"dropped", p.r.Dropped(), "err", err)
}

// player sends a stream to one RTMP client. Pooled (see play_pool.go): a shard reads
// and writes its socket, and it has no goroutine. Otherwise its goroutine
// writes the hub reader's batches with one writev each, and a second goroutine reads
// the client's socket.
type player struct {
	s      *Server
	c      *conn
	r      *hub.Reader
	tracks []*unit.Track
	lastTS time.Duration // DTS of the last unit sent
	encode func(*unit.Unit) []byte
	// mergeWindow is the server's WriteMergeWindow, or 0 for a relay pull.
	mergeWindow time.Duration

	evs  []hub.Event
	bufs net.Buffers
	wb   net.Buffers // the batch being written

	lastWrite  atomic.Int64 // unix nanoseconds of the last completed write
	readerDone chan struct{}
	readErrMu  sync.Mutex
	readErr    error

	dropped   uint64
	dropStart time.Time
	dropLast  time.Time
	merge     *time.Timer

	// pooled players (play_pool.go), touched by their shard only
	rc         syscall.RawConn
	flushing   atomic.Bool // a flush goroutine writes what the socket did not take
	flushErr   error       // its error, read once flushing is false
	lastRead   time.Time
	pingAt     time.Time // when the silent client was pinged (zero: not pinged)
	ending     bool      // the end messages are written
	draining   bool      // half-closed, waiting for the client to close
	drainUntil time.Time

	name    string
	started time.Time
}

func (p *player) run() error {
	p.lastWrite.Store(p.s.Now().UnixNano())
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		defer close(p.readerDone)
		err := p.readLoop()
		p.readErrMu.Lock()
		p.readErr = err
		p.readErrMu.Unlock()
		p.r.Close() // wakes the writer
	}()

	err := p.writeLoop()
	if errors.Is(err, hub.ErrStreamEnded) {
		p.writeEnd()
		err = nil
	}
	p.c.nc.Close()
	<-p.readerDone
	p.r.Close()
	if p.merge != nil {
		p.merge.Stop()
	}
	if errors.Is(err, hub.ErrReaderClosed) {
		// The read side ended the player: report why.
		p.readErrMu.Lock()
		err = p.readErr
		p.readErrMu.Unlock()
	}
	return err
}

// writeLoop writes the reader's events until the stream ends or the player fails.
func (p *player) writeLoop() error {
	for {
		var err error
		p.evs, err = p.r.ReadBatch(p.s.ctx, p.evs[:0])
		if len(p.evs) > 0 {
			p.bufs = p.appendEvents(p.bufs[:0], p.evs)
			clear(p.evs)
			if werr := p.write(); werr != nil {
				return werr
			}
		}
		if err != nil {
			if p.s.ctx.Err() != nil {
				return net.ErrClosed
			}
			return err
		}
		if cap(p.evs) > playerKeepEvents {
			p.evs, p.bufs = nil, nil
		}
		if err := p.checkDrops(); err != nil {
			return err
		}
		if p.mergeWindow > 0 {
			if !p.waitMerge() {
				return net.ErrClosed
			}
		}
	}
}

// appendEvents appends the chunk bytes of evs to bufs: the shared encoding of each unit
// and, at a session start, the metadata and sequence headers.
func (p *player) appendEvents(bufs net.Buffers, evs []hub.Event) net.Buffers {
	videoTS, audioTS := time.Duration(-1), time.Duration(-1)
	defer func() {
		if videoTS >= 0 {
			p.c.stats.media(videoTS, true)
		}
		if audioTS >= 0 {
			p.c.stats.media(audioTS, false)
		}
	}()
	for i := range evs {
		ev := &evs[i]
		if ev.Tracks != nil {
			p.tracks = ev.Tracks
			// The headers take the timestamp of the session's first unit, like the
			// publisher's sequence headers did.
			ts := p.lastTS
			for j := i + 1; j < len(evs); j++ {
				if evs[j].Unit != nil {
					ts = evs[j].Unit.DTS
					break
				}
			}
			bufs = append(bufs, encodeHeaders(ev.Tracks, rtmpTimestamp(ts)))
			continue
		}
		p.lastTS = ev.Unit.DTS
		if t := ev.Unit.Track; t >= 0 && t < len(p.tracks) && p.tracks[t].IsVideo() {
			videoTS = ev.Unit.DTS
		} else {
			audioTS = ev.Unit.DTS
		}
		if b := ev.Unit.Encoded(unit.EncodingRTMP, p.encode); len(b) > 0 {
			bufs = append(bufs, b)
		}
	}
	return bufs
}

// encodeUnit encodes a unit of the player's current session. Every player of a stream
// is at the same session when it meets a unit, so the result is the same for all.
func (p *player) encodeUnit(u *unit.Unit) []byte {
	if u.Track < 0 || u.Track >= len(p.tracks) {
		return nil
	}
	return encodeUnit(p.tracks[u.Track], u)
}

func (p *player) write() error {
	if len(p.bufs) == 0 {
		return nil
	}
	if err := p.c.nc.SetWriteDeadline(time.Now().Add(p.s.WriteTimeout)); err != nil {
		return err
	}
	n, err := p.writeBatch(p.c.nc)
	p.s.countWrite(p.c, int(n))
	p.r.Stream().AddBytesOut(int(n))
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	p.c.stats.active.Store(true)
	p.lastWrite.Store(p.s.Now().UnixNano())
	return nil
}

// writeBatch writes p.bufs to w, with one writev on a TCP connection.
func (p *player) writeBatch(w io.Writer) (int64, error) {
	p.wb = p.bufs // WriteTo consumes its receiver: keep p.bufs for reuse
	n, err := p.wb.WriteTo(w)
	p.wb = nil
	clear(p.bufs)
	return n, err
}

// checkDrops cuts a player whose queue keeps overflowing for SlowPlayerWindow.
func (p *player) checkDrops() error {
	d := p.r.Dropped()
	now := p.s.Now()
	if d > p.dropped {
		p.dropped = d
		if p.dropStart.IsZero() {
			p.dropStart = now
		}
		p.dropLast = now
		if now.Sub(p.dropStart) >= p.s.SlowPlayerWindow {
			return fmt.Errorf("%w (%d units dropped)", errSlowPlayer, d)
		}
	} else if !p.dropStart.IsZero() && now.Sub(p.dropLast) > p.s.SlowPlayerWindow/2 {
		p.dropStart = time.Time{}
	}
	return nil
}

func (p *player) waitMerge() bool {
	if p.merge == nil {
		p.merge = time.NewTimer(p.mergeWindow)
	} else {
		p.merge.Reset(p.mergeWindow)
	}
	select {
	case <-p.merge.C:
		return true
	case <-p.readerDone:
		return false
	case <-p.s.ctx.Done():
		return false
	}
}

// writeEnd tells the player the stream ended (StreamEOF and an UnpublishNotify status),
// then lets it close first.
func (p *player) writeEnd() {
	p.bufs = append(p.bufs[:0], encodeStreamEOF(),
		encodeStatus("NetStream.Play.UnpublishNotify", "stream ended"),
		encodeStatus("NetStream.Play.Stop", "stream ended"))
	if p.write() != nil {
		return
	}
	if tc, ok := p.c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite() //nolint:errcheck
	}
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-p.readerDone:
	case <-t.C:
	case <-p.s.ctx.Done():
	}
}

// readLoop reads the client's socket through the chunk guard: acknowledgements, pings,
// buffer lengths are discarded; deleteStream/closeStream end the player. When the client
// is silent for ReadTimeout while nothing was written to it either, it is pinged, and it
// is closed when it stays silent.
func (p *player) readLoop() error {
	g := p.c.guard
	g.exact = false
	g.captureTypes = 1 << msgTypeCommand
	g.onMessage = playerCommand
	buf := make([]byte, playerReadBufSize)
	pinged := false
	for {
		_, err := g.Read(buf)
		if err == nil {
			pinged = false
			continue
		}
		if !isTimeout(err) {
			return err
		}
		idle := p.s.Now().Sub(time.Unix(0, p.lastWrite.Load()))
		if idle < p.s.ReadTimeout {
			continue
		}
		if pinged {
			return errPlayerSilent
		}
		pinged = true
		// Whole-message writes do not interleave with the writer's (the socket's write
		// lock covers a whole write or writev).
		p.c.nc.SetWriteDeadline(time.Now().Add(p.s.WriteTimeout)) //nolint:errcheck
		if _, err = p.s.writeCounted(p.c, encodePing(uint32(p.s.Now().UnixMilli()))); err != nil {
			return err
		}
	}
}

// playerCommand handles a command message from a player.
func playerCommand(_ uint8, body []byte) error {
	d, err := amf0.Unmarshal(body)
	if err != nil || len(d) == 0 {
		return nil // not our business: gortmplib would have closed, we ignore it
	}
	switch d[0] {
	case "deleteStream", "closeStream":
		return errPlayerClosed
	}
	return nil
}
